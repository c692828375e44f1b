export { stopCluster } from "./commands/stop.js";
export type { Launcher, LaunchedEngine } from "./launchers/launcher.js";
export { LocalLauncher } from "./launchers/local.js";
