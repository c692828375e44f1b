import { connect } from "@ptcluster/client";
const rc = await connect();
const f = (x: number) => x;
const e0 = rc.engine(0);
for (let i = 0; i < 100; i++) await e0.apply(f, 1);
const lat: number[] = [];
for (let i = 0; i < 1000; i++) { const t = performance.now(); await e0.apply(f, 1); lat.push((performance.now() - t) * 1000); }
lat.sort((a, b) => a - b);
console.log("median us", lat[500], "p10", lat[100], "p90", lat[900]);
const q: number[] = [];
for (let i = 0; i < 500; i++) { const t = performance.now(); await rc.queueStatus(); q.push((performance.now() - t) * 1000); }
q.sort((a, b) => a - b);
console.log("hub-only median us", q[250]);
await rc.close();
