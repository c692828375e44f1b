export { ShmEndpoint, hasRefs, refuseRefs, type ShmConfig } from "./shm-io.js";
export {
  ORPHAN_MS,
  RESCUE_GRACE_MS,
  ShmHostDir,
  SHM_ENV,
  probeShm,
  reclaimable,
  removeShmDir,
  shmDirFor,
  type ShmAdvert,
} from "./shm-dir.js";
export { deriveShmKey, encodeRef, isRef, parseRef, ShmTagger, type ShmRef } from "./shm-ref.js";
