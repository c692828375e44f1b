export { Engine, type EngineOptions, type EngineLifecycle } from "./supervisor/engine.js";
