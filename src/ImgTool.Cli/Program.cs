using ImgTool.Cli;

return await ImgToolCli.RunAsync(args, Console.Out, Console.Error, Console.IsOutputRedirected).ConfigureAwait(false);
