export { stopCluster } from "./commands/stop.js";
export type { EngineGroup, LaunchContext, Launcher, LauncherSettings } from "./launchers/launcher.js";
export { createLauncher, LAUNCHERS } from "./launchers/index.js";
export { LocalLauncher } from "./launchers/local.js";
export { SshLauncher, parseHosts } from "./launchers/ssh.js";
