using System.Text;
using System.Text.Json;
using FluentAssertions;
using Sd35.Server.Api;
using Sd35.Server.Api.OpenAi;
using Sd35.Server.Hosting;

namespace Sd35.Server.Tests;

/// <summary>The OpenAI request's extra fields are the native body's own: same names, read by the native body itself.</summary>
public sealed class OpenAiExtraFieldTests
{
    static readonly JsonSerializerOptions Json = Options();

    static JsonSerializerOptions Options()
    {
        var json = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        ServerApp.ConfigureJson(json);
        return json;
    }

    [Fact]
    public void Every_native_field_but_size_and_input_pictures_is_an_extra_and_means_the_same()
    {
        // width and height are OpenAI's size; the input image, mask and strength belong to /v1/images/edits (file parts).
        OpenAiImageRequest.FieldNames.Should().BeEquivalentTo(
            OpenAiImageRequest.OpenAiFields.Union(ImageRequestBody.FieldNames.Except(["width", "height", "image", "mask", "strength"])));

        const string extras = """
            "prompt": "a fox", "negative_prompt": "blur", "steps": 3, "guidance": 2.5, "seed": 9,
            "skip_layer_guidance": {"layers": [7, 8], "scale": 2.8, "start": 0.01, "stop": 0.2}
            """;
        var openAi = RequestReader.Deserialize<OpenAiImageRequest>(Encoding.UTF8.GetBytes($$"""{{{extras}}, "n": 2, "size": "64x32"}"""), Json);
        var native = RequestReader.Deserialize<ImageRequestBody>(Encoding.UTF8.GetBytes($$"""{{{extras}}, "width": 64, "height": 32}"""), Json);
        openAi.ToNative(openAi.Dimensions(), Json).Should().BeEquivalentTo(native);
    }

    [Fact]
    public void A_mistyped_extra_is_a_400_naming_it()
    {
        var openAi = RequestReader.Deserialize<OpenAiImageRequest>(Encoding.UTF8.GetBytes("""{"prompt": "x", "steps": "three"}"""), Json);
        FluentActions.Invoking(() => openAi.ToNative(null, Json)).Should().Throw<RequestReader.BodyException>()
            .Which.Body.Field.Should().Be("steps");
    }
}
