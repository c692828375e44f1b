export { Engine, type EngineOptions, type EngineLifecycle } from "./supervisor/engine.js";
export { runEngine, type RunEngineOptions } from "./run-engine.js";
