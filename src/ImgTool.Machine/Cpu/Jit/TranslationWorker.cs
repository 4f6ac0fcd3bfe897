using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// Compiles hot regions off the run loop's thread: emitting IL and RyuJIT's compilation cost about 1 ms a region,
/// some 10 % of a Linux boot if paid inline, while the machine has a second core. The run loop interprets the
/// head until its translation is published (<see cref="CodeBlock.Translated"/>); both paths give the same state
/// and the same instruction count, so when it lands changes only the speed. One thread serves every CPU of the
/// process (lives as long as it; idle, it waits on the queue).
/// </summary>
[RequiresDynamicCode("Emits IL at run time.")]
internal static class TranslationWorker
{
    /// <summary>Requests beyond this many waiting are refused (the block stays interpreted and may ask again).</summary>
    private const int MaxQueued = 512;

    private static readonly BlockingCollection<Request> Queue = new(new ConcurrentQueue<Request>());
    private static readonly Lazy<Thread> Worker = new(Start);

    /// <summary>Queues the region for translation; false when the queue is full.</summary>
    public static bool TryQueue(BlockTranslator translator, Region region, TranslationContext context)
    {
        _ = Worker.Value;
        if (Queue.Count >= MaxQueued)
        {
            return false;
        }

        Queue.Add(new Request(translator, region, context));
        return true;
    }

    private static Thread Start()
    {
        var thread = new Thread(Run) { IsBackground = true, Name = "imgtool translator" };
        thread.Start();
        return thread;
    }

    private static void Run()
    {
        foreach (var request in Queue.GetConsumingEnumerable())
        {
            var head = request.Region.Head;
            if (!head.Valid)
            {
                continue; // its page's code was written meanwhile
            }

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
