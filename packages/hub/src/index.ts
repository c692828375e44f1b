export { Hub, type HubOptions, type HubState } from "./hub.js";
