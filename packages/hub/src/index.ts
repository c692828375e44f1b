export { Hub, type HubOptions, type HubState, type HubEvents } from "./hub.js";
