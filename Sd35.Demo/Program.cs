using TorchSharp;
foreach (var m in typeof(torch.Tensor).GetMembers().Select(m => m.ToString()!).Where(s => s.Contains("ptr", StringComparison.OrdinalIgnoreCase) || s.Contains("bytes", StringComparison.OrdinalIgnoreCase) || s.Contains("Handle") || s.Contains("copy_") || s.Contains("scaled_dot")).Distinct()) Console.WriteLine(m);
foreach (var m in typeof(torch.nn.functional).GetMethods().Select(m => m.ToString()!).Where(s => s.Contains("scaled_dot")||s.Contains("layer_norm")||s.Contains("group_norm")||s.Contains("gelu")).Distinct()) Console.WriteLine(m);
foreach (var m in typeof(torch).GetMethods().Select(m => m.ToString()!).Where(s => s.Contains("from_file")||s.Contains("frombuffer")||s.Contains("empty(")).Distinct().Take(10)) Console.WriteLine(m);
