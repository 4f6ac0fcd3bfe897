using ImgTool.Cli;

return await ImgToolCli.MainAsync(args).ConfigureAwait(false);
