using ImgTool.Cli;

// The machine host: the same commands as imgtool, run by the JIT runtime (see ImgTool.Cli's MachineHandover).
return await ImgToolCli.MainAsync(args).ConfigureAwait(false);
