using Sd35.Perf;

// `dotnet run -c Release --project Sd35.Perf -- <command> [options]`; `--help` lists the commands, `<command> --help`
// a command's options (PerfCommandLine). Under `mpirun -np <devices> dotnet Sd35.Perf.dll step-speed <config>` every
// process runs the step.
return PerfCommandLine.Run(args, Console.Out, Console.Error);
