export { Hub, type HubState, type HubEvents } from "./hub.js";
export type { HubOptions } from "./options.js";
