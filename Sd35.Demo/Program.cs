using TorchSharp;
foreach (var t in typeof(torch).Assembly.GetTypes().Where(t => t.Name.Contains("Approximate"))) Console.WriteLine(t.FullName);
