using Sd35.Errors;

namespace Sd35.Server.Api;

/// <summary>What a bad request body becomes, whichever API's shape then carries it: status, message, field at fault.</summary>
public sealed record RequestError(int StatusCode, string Message, string? Field)
{
    /// <summary>The 4xx for what can go wrong reading and checking a request; null for anything else (a bug: 500).</summary>
    public static RequestError? Of(Exception e) => e switch
    {
        RequestReader.BodyException body => new(body.StatusCode, body.Body.Error, body.Body.Field),
        RequestException request => new(StatusCodes.Status400BadRequest, request.Message, request.Field),
        InputException input => new(StatusCodes.Status400BadRequest, input.Message, null),
        _ => null,
    };
}
