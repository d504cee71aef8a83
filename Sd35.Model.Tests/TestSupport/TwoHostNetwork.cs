using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Sd35.Tests.TestSupport;

/// <summary>
/// Two "hosts" on this machine for MPI jobs across a network: per host a network namespace (joined to the other by a
/// veth pair, addresses on that link only), a UTS namespace with its own hostname, an IPC namespace (so UCX sees no
/// shared memory between the hosts and talks TCP over the link, as between machines), a mount namespace with its own
/// /etc/hosts, /run, /dev/shm and its own copy of the model folder at the shared path <see cref="ModelPath"/>, and a
/// PID namespace whose first process holds the test's pipe: when the test ends, or its process dies, that pipe closes
/// and the kernel ends every process of the host. Each host runs Debian's sshd with a host key and a client key made
/// here, so MPICH's hydra reaches the second host by ssh as it would a real one (<c>tools/mpi/sd35-ssh</c>).
/// Nothing is sent to any address but the two on the link. Needs root; <see cref="Unavailable"/> says why not.
/// </summary>
public sealed class TwoHostNetwork : IDisposable
{
    public static readonly string[] HostNames = ["sd35-a", "sd35-b"];
    /// <summary>A /30 of our own on the veth link; the namespaces have no other interface but loopback.</summary>
    static readonly string[] Addresses = ["10.235.35.1", "10.235.35.2"];
    public const string LinkName = "sd35-link";
    const string Prefix = "sd35mh";
    const int SshPort = 2235;

    readonly int _id = Environment.ProcessId;
    readonly Process?[] _hosts = new Process?[2];
    readonly HashSet<int>[] _infrastructure = [[], []];
    readonly StringBuilder _log = new();
    bool _disposed;

    public string Root { get; }
    /// <summary>The model folder's path, the same on both hosts; each host sees its own copy there.</summary>
    public string ModelPath => Path.Combine(Root, "model");
    public string HostFile => Path.Combine(Root, "hostfile");

    /// <summary>Why the network cannot be made here, or null: root, the tools, MPICH, and a namespace made and removed.</summary>
    public static string? Unavailable { get; } = WhyUnavailable();

    public TwoHostNetwork(string modelFolder)
    {
        RemoveLeftovers();
        Root = Path.Combine(Path.GetTempPath(), $"{Prefix}-{_id}");
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
        try
        {
            Directory.CreateDirectory(Root);
            MakeLink();
            WriteKeysAndConfigs();
            for (int h = 0; h < 2; h++) CopyFolder(modelFolder, Path.Combine(Root, Letter(h)));
            Directory.CreateDirectory(ModelPath);
            for (int h = 0; h < 2; h++) StartHost(h);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    static string Letter(int host) => host == 0 ? "a" : "b";
    string Namespace(int host) => $"{Prefix}-{_id}-{Letter(host)}";

    /// <summary>Bytes the link carried from host A to host B and back, as host A's end of the veth pair counts them.</summary>
    public (long AToB, long BToA) LinkBytes()
    {
        var json = Run("ip", ["-n", Namespace(0), "-j", "-s", "link", "show", "dev", LinkName]);
        var stats = JsonDocument.Parse(json).RootElement[0].GetProperty("stats64");
        return (stats.GetProperty("tx").GetProperty("bytes").GetInt64(), stats.GetProperty("rx").GetProperty("bytes").GetInt64());
    }

    /// <summary>Starts a program on <paramref name="host"/> (in all its namespaces); its output is collected as it comes.</summary>
    public HostJob Start(int host, IEnumerable<string> command, IDictionary<string, string> environment)
    {
        var start = new ProcessStartInfo("nsenter") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-t", InitPid(host).ToString(), "-n", "-u", "-m", "-p", "--" }.Concat(command)) start.ArgumentList.Add(a);
        foreach (var name in new[] { "PMI_RANK", "PMI_SIZE", "PMI_FD", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE" }) start.Environment.Remove(name);
        foreach (var (k, v) in environment) start.Environment[k] = v;
        return new HostJob(Process.Start(start)!);
    }

    /// <summary>The processes of a host other than its own (namespace init and sshd): what a job left behind.</summary>
    public IReadOnlyList<string> JobProcessesOn(int host) =>
        PidsOf(Namespace(host)).Where(p => !_infrastructure[host].Contains(p)).Select(Describe).Where(d => d is not null).Select(d => d!).ToList();

    /// <summary>Every process of the host at once with SIGKILL (its sshd, hydra's proxy, the ranks): the host is lost.</summary>
    public void KillEveryProcessOf(int host)
    {
        for (int round = 0; round < 20; round++)
        {
            var pids = PidsOf(Namespace(host));
            if (pids.Count == 0) return;
            foreach (int pid in pids) Kill(pid);
            Thread.Sleep(50);
        }
    }

    public string Log { get { lock (_log) return _log.ToString(); } }

    void MakeLink()
    {
        for (int h = 0; h < 2; h++) Run("ip", ["netns", "add", Namespace(h)]);
        Run("ip", ["link", "add", $"{Prefix}{_id}a", "type", "veth", "peer", "name", $"{Prefix}{_id}b"]);
        for (int h = 0; h < 2; h++)
        {
            string ns = Namespace(h);
            Run("ip", ["link", "set", $"{Prefix}{_id}{Letter(h)}", "netns", ns]);
            Run("ip", ["-n", ns, "link", "set", $"{Prefix}{_id}{Letter(h)}", "name", LinkName]);
            Run("ip", ["-n", ns, "addr", "add", $"{Addresses[h]}/30", "dev", LinkName]);
            Run("ip", ["-n", ns, "link", "set", "lo", "up"]);
            Run("ip", ["-n", ns, "link", "set", LinkName, "up"]);
        }
    }

    void WriteKeysAndConfigs()
    {
        string F(string name) => Path.Combine(Root, name);
        Run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "sd35 test host", "-f", F("host_key")]);
        Run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "sd35 test client", "-f", F("client_key")]);
        File.Copy(F("client_key.pub"), F("authorized_keys"));
        string hostKey = string.Join(' ', File.ReadAllText(F("host_key.pub")).Split(' ').Take(2));
        File.WriteAllLines(F("known_hosts"), Enumerable.Range(0, 2).Select(h => $"[{HostNames[h]}]:{SshPort},[{Addresses[h]}]:{SshPort} {hostKey}"));
        File.WriteAllText(F("hosts"), $"127.0.0.1 localhost\n{Addresses[0]} {HostNames[0]}\n{Addresses[1]} {HostNames[1]}\n");
        File.WriteAllText(HostFile, $"{HostNames[0]}:4\n{HostNames[1]}:4\n");
        File.WriteAllText(F("ssh_config"), $"""
            Host {HostNames[0]} {HostNames[1]}
              Port {SshPort}
              User root
              IdentityFile {F("client_key")}
              IdentitiesOnly yes
              UserKnownHostsFile {F("known_hosts")}
              StrictHostKeyChecking yes
              BatchMode yes
              ConnectTimeout 5
            """ + "\n");
        for (int h = 0; h < 2; h++)
            File.WriteAllText(F($"sshd_{Letter(h)}"), $"""
                Port {SshPort}
                ListenAddress {Addresses[h]}
                HostKey {F("host_key")}
                AuthorizedKeysFile {F("authorized_keys")}
                PermitRootLogin prohibit-password
                PasswordAuthentication no
                KbdInteractiveAuthentication no
                UsePAM no
                StrictModes no
                PidFile /run/sshd.pid
                """ + "\n");
    }

    /// <summary>The ssh client settings for hydra's launcher (tools/mpi/sd35-ssh reads SD35_SSH).</summary>
    public string SshCommand => $"ssh -F {Path.Combine(Root, "ssh_config")}";

    void StartHost(int host)
    {
        string letter = Letter(host);
        // pid 1 of the host's PID namespace: sets the host up, starts sshd, then waits on the test's pipe; when it ends
        // (the pipe closes), the kernel kills every process of the namespace.
        string script = $"""
            set -e
            hostname {HostNames[host]}
            mount --bind {Root}/hosts /etc/hosts
            mount --bind {Root}/{letter} {ModelPath}
            mount -t tmpfs -o size=16m tmpfs /run
            mkdir /run/sshd
            mount -t tmpfs -o size=1g tmpfs /dev/shm
            /usr/sbin/sshd -D -e -f {Root}/sshd_{letter} &
            read -r _ || true
            """;
        var start = new ProcessStartInfo("ip") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "netns", "exec", Namespace(host), "unshare", "--ipc", "--pid", "--fork", "--kill-child", "--mount-proc", "--uts", "--mount",
                     "--propagation", "private", "bash", "-c", script })
            start.ArgumentList.Add(a);
        var process = _hosts[host] = Process.Start(start)!;
        var listening = new ManualResetEventSlim();
        void OnLine(string? line)
        {
            if (line is null) return;
            lock (_log) _log.AppendLine($"[{HostNames[host]}] {line}");
            if (line.Contains("Server listening")) listening.Set();
        }
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!listening.Wait(TimeSpan.FromSeconds(30)))
            throw new InvalidOperationException($"sshd on {HostNames[host]} did not start within 30 s:\n{Log}");
        foreach (int pid in PidsOf(Namespace(host))) _infrastructure[host].Add(pid);
    }

    /// <summary>The host's first process (pid 1 inside), as this machine numbers it: the one nsenter enters.</summary>
    int InitPid(int host) =>
        PidsOf(Namespace(host)).FirstOrDefault(p => ReadStatus(p, "NSpid") is { } ns && ns.Split('\t', ' ', StringSplitOptions.RemoveEmptyEntries) is [_, "1"]) is int pid and > 0
            ? pid
            : throw new InvalidOperationException($"host {HostNames[host]} has no running init process:\n{Log}");

    void OnProcessExit(object? sender, EventArgs e) => Dispose();

    /// <summary>Closes the hosts' pipes (their PID namespaces end), kills whatever is left, removes the namespaces, the link and the files.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        foreach (var host in _hosts)
        {
            if (host is null) continue;
            try { host.StandardInput.Close(); } catch (Exception) { }
        }
        foreach (var host in _hosts)
        {
            if (host is null) continue;
            if (!host.WaitForExit(TimeSpan.FromSeconds(10))) try { host.Kill(entireProcessTree: true); } catch (Exception) { }
            host.Dispose();
        }
        for (int h = 0; h < 2; h++) RemoveNamespace(Namespace(h));
        RemoveRootLinks(_id);
        if (Root is not null) try { Directory.Delete(Root, recursive: true); } catch (Exception) { }
    }

    /// <summary>What an earlier test process left when it was killed before its Dispose: namespaces, links and folders of dead processes.</summary>
    public static void RemoveLeftovers()
    {
        var pattern = new Regex($@"^{Prefix}-(\d+)-[ab]\b");
        foreach (var line in RunOrEmpty("ip", ["netns", "list"]).Split('\n'))
            if (pattern.Match(line) is { Success: true } m && !IsAlive(int.Parse(m.Groups[1].Value)))
                RemoveNamespace(line.Split(' ')[0]);
        foreach (var line in RunOrEmpty("ip", ["-o", "link", "show"]).Split('\n'))
            if (Regex.Match(line, $@"^\d+: {Prefix}(\d+)[ab]@") is { Success: true } m && !IsAlive(int.Parse(m.Groups[1].Value)))
                RemoveRootLinks(int.Parse(m.Groups[1].Value));
        foreach (var dir in Directory.EnumerateDirectories(Path.GetTempPath(), $"{Prefix}-*"))
            if (int.TryParse(Path.GetFileName(dir)[(Prefix.Length + 1)..], out int pid) && !IsAlive(pid))
                try { Directory.Delete(dir, recursive: true); } catch (Exception) { }
    }

    static void RemoveNamespace(string ns)
    {
        for (int round = 0; round < 50; round++)
        {
            var pids = PidsOf(ns);
            if (pids.Count == 0) break;
            foreach (int pid in pids) Kill(pid);
            Thread.Sleep(100);
        }
        RunOrEmpty("ip", ["netns", "del", ns]);
    }

    static void RemoveRootLinks(int id)
    {
        foreach (var end in new[] { "a", "b" })
            if (Directory.Exists($"/sys/class/net/{Prefix}{id}{end}")) RunOrEmpty("ip", ["link", "del", $"{Prefix}{id}{end}"]);
    }

    static List<int> PidsOf(string ns) =>
        RunOrEmpty("ip", ["netns", "pids", ns]).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToList();

    static void Kill(int pid)
    {
        try { using var p = Process.GetProcessById(pid); p.Kill(); } catch (Exception) { }
    }

    static bool IsAlive(int pid) => Directory.Exists($"/proc/{pid}");

    static string? ReadStatus(int pid, string key)
    {
        try
        {
            return File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith(key + ":"))?[(key.Length + 1)..].Trim();
        }
        catch (IOException) { return null; }
    }

    static string? Describe(int pid)
    {
        try
        {
            var cmdline = File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim();
            return ReadStatus(pid, "State") is { } state && state.StartsWith("Z") ? null : $"pid {pid}: {cmdline}";
        }
        catch (IOException) { return null; }
    }

    static void CopyFolder(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    static string Run(string program, IEnumerable<string> args)
    {
        var (code, output, error) = Execute(program, args);
        if (code != 0) throw new InvalidOperationException($"{program} {string.Join(' ', args)} failed with exit code {code}: {error.Trim()}");
        return output;
    }

    static string RunOrEmpty(string program, IEnumerable<string> args)
    {
        try { return Execute(program, args).Output; }
        catch (System.ComponentModel.Win32Exception) { return ""; }
    }

    static (int Code, string Output, string Error) Execute(string program, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output, error.Result);
    }

    static string? WhyUnavailable()
    {
        if (!OperatingSystem.IsLinux()) return "network namespaces need Linux";
        if (!Environment.IsPrivilegedProcess) return "making network namespaces needs root (CI runs as root)";
        foreach (var tool in new[] { "/usr/sbin/sshd", "/usr/bin/ssh", "/usr/bin/ssh-keygen", "/usr/bin/unshare", "/usr/bin/nsenter" })
            if (!File.Exists(tool)) return $"{tool} is missing (apt-get install -y openssh-server openssh-client util-linux)";
        if (MpiJob.Unavailable is { } mpi) return mpi;
        string probe = $"{Prefix}-probe-{Environment.ProcessId}";
        try
        {
            var (code, _, error) = Execute("ip", ["netns", "add", probe]);
            if (code != 0) return $"cannot make a network namespace here (ip netns add: {error.Trim()})";
            Execute("ip", ["netns", "del", probe]);
            return null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "the ip tool is missing (apt-get install -y iproute2)";
        }
    }
}

/// <summary>A program started on one host; its output collected line by line, both streams.</summary>
public sealed class HostJob(Process process) : IDisposable
{
    readonly StringBuilder _output = Collect(process);
    readonly Stopwatch _clock = Stopwatch.StartNew();

    public string Output { get { lock (_output) return _output.ToString(); } }
    public int ExitCode => process.ExitCode;
    public TimeSpan Elapsed => _clock.Elapsed;

    static StringBuilder Collect(Process process)
    {
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return output;
    }

    /// <summary>Waits for the program to end; false (and the program killed) after <paramref name="limit"/>.</summary>
    public bool WaitForExit(TimeSpan limit)
    {
        if (process.WaitForExit(limit))
        {
            process.WaitForExit(); // drains the redirected streams
            return true;
        }
        process.Kill(entireProcessTree: true);
        process.WaitForExit();
        return false;
    }

    /// <summary>Waits until the output contains <paramref name="text"/>; false if the program ends or the time runs out first.</summary>
    public bool WaitForOutput(string text, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < limit)
        {
            if (Output.Contains(text)) return true;
            if (process.HasExited) return Output.Contains(text);
            Thread.Sleep(100);
        }
        return false;
    }

    public override string ToString() => $"exit code {(process.HasExited ? process.ExitCode.ToString() : "(running)")} after {Elapsed.TotalSeconds:0.0} s; output:\n{Output}";

    public void Dispose()
    {
        if (!process.HasExited) try { process.Kill(entireProcessTree: true); process.WaitForExit(); } catch (Exception) { }
        process.Dispose();
    }
}
