export { Engine, type EngineOptions, type EngineLifecycle } from "./supervisor/engine.js";
export { runEngine, type RunEngineOptions } from "./run-engine.js";
export { defaultMaxMemoryMb, DEFAULT_MEMORY_SHARE } from "./memory-limit.js";
