using Sd35.Demo;

try
{
    var options = DemoOptions.Parse(args);
    return new DemoRunner(Console.Out, Console.Error).Run(options);
}
catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or NotSupportedException or KeyNotFoundException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
