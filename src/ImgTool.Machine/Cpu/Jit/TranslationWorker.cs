using System.Diagnostics.CodeAnalysis;
using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// Compiles hot regions off the run loop's thread: emitting IL and RyuJIT's compilation cost about 2 ms a region,
/// some 10 % of a Linux boot if paid inline, while the machine has a second core. The run loop interprets the
/// head until its translation is published (<see cref="CodeBlock.Translated"/>); both paths give the same state
/// and the same instruction count, so when it lands changes only the speed. The waiting region whose head is the
/// hottest now goes first: a head keeps counting its executions while it waits, so the loop the guest is in
/// overtakes the code that was hot once (a first-come order left a Linux boot's relocation loop interpreted for
/// a million iterations behind a backlog). One thread serves every CPU of the process (lives as long as it; idle,
/// it waits for work).
/// </summary>
[RequiresDynamicCode("Emits IL at run time.")]
internal static class TranslationWorker
{
    /// <summary>Requests beyond this many waiting are refused (the block stays interpreted and may ask again).</summary>
    private const int MaxQueued = 512;

    private static readonly List<Request> Waiting = [];
    private static readonly Lazy<Thread> Worker = new(Start);

    /// <summary>Queues the region for translation; false when the queue is full.</summary>
    public static bool TryQueue(BlockTranslator translator, Region region, TranslationContext context)
    {
        _ = Worker.Value;
        lock (Waiting)
        {
            if (Waiting.Count >= MaxQueued)
            {
                return false;
            }

            Waiting.Add(new Request(translator, region, context));
            Monitor.Pulse(Waiting);
        }

        return true;
    }

    private static Thread Start()
    {
        var thread = new Thread(Run) { IsBackground = true, Name = "imgtool translator" };
        thread.Start();
        return thread;
    }

    /// <summary>Takes the waiting request whose head has run most often (dropping those whose code was written meanwhile).</summary>
    private static Request Next()
    {
        lock (Waiting)
        {
            while (true)
            {
                Waiting.RemoveAll(request => !request.Region.Head.Valid);
                if (Waiting.Count > 0)
                {
                    int hottest = 0;
                    for (int i = 1; i < Waiting.Count; i++)
                    {
                        if (Volatile.Read(ref Waiting[i].Region.Head.Heat) > Volatile.Read(ref Waiting[hottest].Region.Head.Heat))
                        {
                            hottest = i;
                        }
                    }

                    var request = Waiting[hottest];
                    Waiting.RemoveAt(hottest);
                    return request;
                }

                Monitor.Wait(Waiting);
            }
        }
    }

    private static void Run()
    {
        while (true)
        {
            var request = Next();
            var head = request.Region.Head;
            try
            {
                var code = request.Translator.Translate(request.Region, request.Context);
                Volatile.Write(ref head.Translated, code);
            }
            catch (Exception e) when (e is InvalidProgramException or NotSupportedException or ArgumentException or InvalidOperationException)
            {
                // A translator bug must not end the boot: the block stays interpreted (exact either way), and the
                // failure is counted for the report. Synchronous translation (the tests) lets it propagate.
                Interlocked.Increment(ref request.Translator.Statistics.Failures);
            }
        }
    }

    private sealed record Request(BlockTranslator Translator, Region Region, TranslationContext Context);
}
