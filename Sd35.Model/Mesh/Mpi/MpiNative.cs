using System.Reflection;
using System.Runtime.InteropServices;

namespace Sd35.Mesh.Mpi;

/// <summary>
/// P/Invoke bindings to MPICH's C API (the subset the MPI backend uses). MPICH's handles (MPI_Comm, MPI_Datatype,
/// MPI_Op, MPI_Group, MPI_Request, MPI_Errhandler) are plain ints with fixed values from <c>mpi.h</c>, so no C shim
/// is needed; the constants below are copied from MPICH 4's <c>mpi.h</c> (stable across MPICH ABI version 12, shared
/// by Intel MPI and MVAPICH). Open MPI's handles are pointers to library globals and would need a shim.
/// </summary>
static unsafe partial class MpiNative
{
    const string Library = "mpi";

    // The MPICH ABI's library names: Debian calls it libmpich.so.12, upstream and most distributions libmpi.so.12.
    static readonly string[] Candidates = ["libmpich.so.12", "libmpi.so.12", "libmpich.so", "libmpi.so"];

    static MpiNative()
    {
        KeepDotNetSignalHandling();
        NativeLibrary.SetDllImportResolver(typeof(MpiNative).Assembly, Resolve);
    }

    /// <summary>
    /// MPICH built on UCX (Debian's is) loads libucs, whose constructor installs its own handlers for SIGSEGV, SIGBUS,
    /// SIGILL and SIGFPE that print a backtrace and abort. .NET turns a null dereference into a NullReferenceException
    /// through SIGSEGV, so with those handlers any null dereference in the process, even a caught one, kills it (a test
    /// host crashed this way). Unless the user set UCX's switch, UCX's error handling is turned off before the library
    /// loads: in the C environment, which UCX reads with getenv and .NET's Environment.SetEnvironmentVariable does not
    /// change on Unix. MPI's own errors still come back as return codes (MPI_ERRORS_RETURN).
    /// </summary>
    static void KeepDotNetSignalHandling()
    {
        if (!OperatingSystem.IsWindows()) SetEnv("UCX_HANDLE_ERRORS", "none", overwrite: 0);
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int SetEnv(string name, string value, int overwrite);

    static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name != Library) return 0;
        foreach (var candidate in Candidates)
            if (NativeLibrary.TryLoad(candidate, out var handle)) return handle;
        throw new DllNotFoundException(
            $"no MPICH library found (tried {string.Join(", ", Candidates)}); install it with 'apt-get install -y mpich' or put it on LD_LIBRARY_PATH");
    }

    /// <summary>
    /// Whether an MPICH-ABI library can be loaded here (without initializing MPI). A library that loads stays loaded,
    /// as the bindings would load it anyway: the process then runs as it will with MPI (see <see cref="KeepDotNetSignalHandling"/>).
    /// </summary>
    public static bool IsAvailable() => Candidates.Any(candidate => NativeLibrary.TryLoad(candidate, out _));

    public const int Success = 0;
    public const int CommWorld = 0x44000000;
    public const int CommNull = 0x04000000;
    public const int Byte = 0x4c00010d;
    public const int Long = 0x4c000807; // MPI_LONG: 8 bytes on LP64
    public const int ErrorsReturn = 0x54000001;
    public const int ThreadSerialized = 2;
    public const int Undefined = -32766;
    public const int MaxErrorString = 512;
    public static readonly nint StatusIgnore = 1;
    public static readonly nint StatusesIgnore = 1;

    [LibraryImport(Library, EntryPoint = "MPI_Init_thread")]
    public static partial int InitThread(nint argc, nint argv, int required, out int provided);

    [LibraryImport(Library, EntryPoint = "MPI_Initialized")]
    public static partial int Initialized(out int flag);

    [LibraryImport(Library, EntryPoint = "MPI_Finalized")]
    public static partial int Finalized(out int flag);

    [LibraryImport(Library, EntryPoint = "MPI_Finalize")]
    public static partial int Finalize();

    [LibraryImport(Library, EntryPoint = "MPI_Abort")]
    public static partial int Abort(int comm, int errorCode);

    [LibraryImport(Library, EntryPoint = "MPI_Comm_rank")]
    public static partial int CommRank(int comm, out int rank);

    [LibraryImport(Library, EntryPoint = "MPI_Comm_size")]
    public static partial int CommSize(int comm, out int size);

    [LibraryImport(Library, EntryPoint = "MPI_Comm_dup")]
    public static partial int CommDup(int comm, out int newComm);

    [LibraryImport(Library, EntryPoint = "MPI_Comm_split")]
    public static partial int CommSplit(int comm, int color, int key, out int newComm);

    [LibraryImport(Library, EntryPoint = "MPI_Comm_group")]
    public static partial int CommGroup(int comm, out int group);

    [LibraryImport(Library, EntryPoint = "MPI_Group_incl")]
    public static partial int GroupIncl(int group, int n, int* ranks, out int newGroup);

    [LibraryImport(Library, EntryPoint = "MPI_Group_free")]
    public static partial int GroupFree(ref int group);

    [LibraryImport(Library, EntryPoint = "MPI_Comm_create_group")]
    public static partial int CommCreateGroup(int comm, int group, int tag, out int newComm);

    [LibraryImport(Library, EntryPoint = "MPI_Comm_set_errhandler")]
    public static partial int CommSetErrhandler(int comm, int errhandler);

    [LibraryImport(Library, EntryPoint = "MPI_Error_string")]
    public static partial int ErrorString(int code, byte* text, out int length);

    [LibraryImport(Library, EntryPoint = "MPI_Bcast")]
    public static partial int Bcast(void* buffer, int count, int datatype, int root, int comm);

    [LibraryImport(Library, EntryPoint = "MPI_Ibcast")]
    public static partial int Ibcast(void* buffer, int count, int datatype, int root, int comm, out int request);

    [LibraryImport(Library, EntryPoint = "MPI_Test")]
    public static partial int Test(ref int request, out int flag, nint status);

    [LibraryImport(Library, EntryPoint = "MPI_Allgather")]
    public static partial int Allgather(void* send, int sendCount, int sendType, void* receive, int receiveCount, int receiveType, int comm);

    [LibraryImport(Library, EntryPoint = "MPI_Allgatherv")]
    public static partial int Allgatherv(void* send, int sendCount, int sendType, void* receive, int* receiveCounts, int* displacements, int receiveType, int comm);

    [LibraryImport(Library, EntryPoint = "MPI_Alltoall")]
    public static partial int Alltoall(void* send, int sendCount, int sendType, void* receive, int receiveCount, int receiveType, int comm);

    [LibraryImport(Library, EntryPoint = "MPI_Alltoallv")]
    public static partial int Alltoallv(void* send, int* sendCounts, int* sendDisplacements, int sendType,
                                        void* receive, int* receiveCounts, int* receiveDisplacements, int receiveType, int comm);

    [LibraryImport(Library, EntryPoint = "MPI_Sendrecv")]
    public static partial int Sendrecv(void* send, int sendCount, int sendType, int destination, int sendTag,
                                       void* receive, int receiveCount, int receiveType, int source, int receiveTag, int comm, nint status);

    [LibraryImport(Library, EntryPoint = "MPI_Isend")]
    public static partial int Isend(void* buffer, int count, int datatype, int destination, int tag, int comm, out int request);

    [LibraryImport(Library, EntryPoint = "MPI_Irecv")]
    public static partial int Irecv(void* buffer, int count, int datatype, int source, int tag, int comm, out int request);

    [LibraryImport(Library, EntryPoint = "MPI_Waitall")]
    public static partial int Waitall(int count, int* requests, nint statuses);

    [LibraryImport(Library, EntryPoint = "MPI_Request_free")]
    public static partial int RequestFree(ref int request);

    /// <summary>Throws <see cref="MpiException"/> with MPI's own error text when <paramref name="code"/> is not success.</summary>
    public static void Check(int code, string call)
    {
        if (code != Success) throw new MpiException(call, code, Describe(code));
    }

    public static string Describe(int code)
    {
        byte* text = stackalloc byte[MaxErrorString];
        return ErrorString(code, text, out int length) == Success ? System.Text.Encoding.UTF8.GetString(text, length) : $"MPI error {code}";
    }
}

/// <summary>An MPI call returned an error (the library is set to return errors, not to abort on them).</summary>
public sealed class MpiException(string call, int code, string text) : Exception($"{call} failed: {text} (MPI error {code})")
{
    public int Code { get; } = code;
}
