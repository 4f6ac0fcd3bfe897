using ImgTool.Cli;

// The machine host: the same commands as imgtool, run by the JIT runtime (see ImgTool.Cli's MachineHandover).
return await ImgToolCli.RunAsync(args, Console.Out, Console.Error, Console.IsOutputRedirected).ConfigureAwait(false);
