export { ShmEndpoint, hasRefs, refuseRefs, type ShmConfig } from "./shm-io.js";
export { ShmHostDir, SHM_ENV, probeShm, removeShmDir, shmDirFor, type ShmAdvert } from "./shm-dir.js";
export { deriveShmKey, encodeRef, isRef, parseRef, ShmTagger, type ShmRef } from "./shm-ref.js";
