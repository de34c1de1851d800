/**
 * Preloaded into a measured process (`BENCH_BRIDGE_NODE_ARGS="--import ./bench/ingest/loop-delay.mjs"`):
 * every BENCH_LOOP_DELAY_MS (5,000) it writes its event loop's delay over the interval to stderr —
 * how long work that was ready waited for the loop (node:perf_hooks monitorEventLoopDelay, 10 ms
 * resolution by default, here 1 ms). Plain JavaScript: it runs beside the compiled bridge.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

const every = Number(process.env.BENCH_LOOP_DELAY_MS ?? 5000);
const histogram = monitorEventLoopDelay({ resolution: 1 });
histogram.enable();
const ms = (ns) => (ns / 1e6).toFixed(1);
setInterval(() => {
  process.stderr.write(
    `event-loop delay (pid ${process.pid}, last ${every / 1000} s): p50 ${ms(histogram.percentile(50))} ms, p99 ${ms(histogram.percentile(99))} ms, max ${ms(histogram.max)} ms\n`,
  );
  histogram.reset();
}, every).unref();
