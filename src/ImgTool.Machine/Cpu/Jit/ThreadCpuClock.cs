using System.Runtime.InteropServices;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// CPU time of the calling thread (Linux CLOCK_THREAD_CPUTIME_ID), so that the translator's compile time is
/// measured as work done rather than as wall time, which another busy process on the machine would inflate.
/// </summary>
internal static partial class ThreadCpuClock
{
    private const int ClockThreadCpuTime = 3;

    /// <summary>Nanoseconds of CPU time this thread has used; 0 where the clock cannot be read.</summary>
    public static long Nanoseconds()
    {
        try
        {
            return clock_gettime(ClockThreadCpuTime, out var time) == 0 ? time.Seconds * 1_000_000_000 + time.Nanoseconds : 0;
        }
        catch (DllNotFoundException)
        {
            return 0;
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int clock_gettime(int clock, out TimeSpec time);
}
