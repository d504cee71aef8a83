using TorchSharp;
var t = torch.randn(3);
Console.WriteLine(string.Join(",", t.data<float>().ToArray()));
