// MSBuild task (compiled inline by RoslynCodeTaskFactory) that lets TorchSharp's native bridge load on
// Debian 12. libLibTorchSharp.so declares a version need on GLIBCXX_3.4.32 (GCC 13's libstdc++), but
// Debian 12 ships libstdc++ up to GLIBCXX_3.4.30. The only symbol bound to that version is
// std::ios_base_library_init, a marker the library never calls. Marking that one version-need entry weak
// (VER_FLG_WEAK in .gnu.version_r) tells the dynamic loader that a missing version is not fatal.
// The task touches nothing else, changes nothing when the flag is already set, and does nothing at all
// when the system libstdc++ already provides the version.
using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public sealed class WeakenGlibcxxVersionNeed : Task
{
    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    [Required] public ITaskItem[] Libraries { get; set; } = Array.Empty<ITaskItem>();
    [Required] public string VersionName { get; set; } = "";

    static readonly string[] SystemLibStdCxx =
    {
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/usr/lib64/libstdc++.so.6", "/usr/lib/aarch64-linux-gnu/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
    };

    public override bool Execute()
    {
        if (!System.Runtime.InteropServices.RuntimeInformation.IsOSPlatform(System.Runtime.InteropServices.OSPlatform.Linux)) return true;
        if (SystemProvidesVersion())
        {
            Log.LogMessage(MessageImportance.Low, $"System libstdc++ provides {VersionName}; nothing to patch.");
            return true;
        }
        foreach (var item in Libraries)
        {
            var path = item.ItemSpec;
            if (!File.Exists(path)) continue;
            try
            {
                var result = Patch(path, VersionName);
                Log.LogMessage(MessageImportance.Normal, $"{path}: {result}");
            }
            catch (Exception e)
            {
                Log.LogError($"Could not mark {VersionName} weak in {path}: {e.Message}");
                return false;
            }
        }
        return !Log.HasLoggedErrors;
    }

    bool SystemProvidesVersion()
    {
        var needle = Encoding.ASCII.GetBytes(VersionName + "\0");
        foreach (var candidate in SystemLibStdCxx)
        {
            if (!File.Exists(candidate)) continue;
            if (IndexOf(File.ReadAllBytes(candidate), needle) >= 0) return true;
        }
        return false;
    }

    static int IndexOf(byte[] haystack, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= haystack.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && haystack[i + j] == needle[j]) j++;
            if (j == needle.Length) return i;
        }
        return -1;
    }

    /// <summary>Sets VER_FLG_WEAK on the vernaux entry named <paramref name="version"/>.</summary>
    public static string Patch(string path, string version)
    {
        var elf = File.ReadAllBytes(path);
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (elf[4] != 2 || elf[5] != 1) throw new InvalidDataException("only little-endian ELF64 is supported");

        ulong shoff = BitConverter.ToUInt64(elf, 0x28);
        int shentsize = BitConverter.ToUInt16(elf, 0x3A);
        int shnum = BitConverter.ToUInt16(elf, 0x3C);
        for (int i = 0; i < shnum; i++)
        {
            int sh = checked((int)shoff + i * shentsize);
            if (BitConverter.ToUInt32(elf, sh + 4) != ShtGnuVerneed) continue;
            int offset = checked((int)BitConverter.ToUInt64(elf, sh + 0x18));
            int link = (int)BitConverter.ToUInt32(elf, sh + 0x28);
            int count = (int)BitConverter.ToUInt32(elf, sh + 0x2C);
            int strtab = checked((int)BitConverter.ToUInt64(elf, checked((int)shoff + link * shentsize) + 0x18));

            int need = offset;
            for (int n = 0; n < count; n++)
            {
                int auxCount = BitConverter.ToUInt16(elf, need + 2);
                int aux = need + (int)BitConverter.ToUInt32(elf, need + 8);
                for (int a = 0; a < auxCount; a++)
                {
                    int nameOffset = strtab + (int)BitConverter.ToUInt32(elf, aux + 8);
                    int end = Array.IndexOf(elf, (byte)0, nameOffset);
                    var name = Encoding.ASCII.GetString(elf, nameOffset, end - nameOffset);
                    if (name == version)
                    {
                        ushort flags = BitConverter.ToUInt16(elf, aux + 4);
                        if ((flags & VerFlgWeak) != 0) return $"{version} already weak";
                        flags |= VerFlgWeak;
                        using var file = new FileStream(path, FileMode.Open, FileAccess.Write);
                        file.Position = aux + 4;
                        file.Write(BitConverter.GetBytes(flags), 0, 2);
                        return $"marked {version} weak";
                    }
                    aux += (int)BitConverter.ToUInt32(elf, aux + 12);
                }
                need += (int)BitConverter.ToUInt32(elf, need + 12);
            }
            return $"no version need on {version}";
        }
        return "no .gnu.version_r section";
    }
}
