#!/usr/bin/env python3
"""Inference latency of this package against PyTorch eager and ONNX Runtime, measured side by side.

    .venv-ref/bin/python tools/bench_peers.py                 # everything (about 11-13 minutes)
    .venv-ref/bin/python tools/bench_peers.py --archs resnet18 --batches 1 --threads 2 --rounds 5

What it does (see Benchmarks/README.md):
  * builds the Swift benchmark (`swift build -c release` in Benchmarks/, its own package);
  * per architecture starts three worker processes, each holding one engine and one model:
      ours  Benchmarks/.build/release/bench serve   (random He-scaled weights)
      torch this script --worker torch              (torchvision / timm model, random init, eval,
                                                     torch.inference_mode, torch.set_num_threads)
      ort   this script --worker ort                (the torch model exported at opset 17 with a dynamic
                                                     batch axis; CPU provider, intra_op_num_threads,
                                                     sequential execution, all graph optimisations)
    all three read the same input file (float32 NCHW, fixed seed);
  * per (batch, threads): warm-up, then `rounds` rounds (twice as many at batch 8) in which the engines
    take turns (the order rotates every round), each timing 3 inferences at batch 1 and 1 at batch 8,
    and the next turn starts once the engine that ran has stopped using the CPU (thread pools that spin
    after a run would otherwise slow the engine after them);
    reports the median and min of all timed inferences, the ratios of the medians, and each worker's
    peak RSS (VmHWM, reset before the block);
  * a memory table at 2 threads: each engine's RSS for its model (peak during the block less the process's RSS
    before loading, once its command loop has run), against the budget 1.2 x (weights + the two largest activations), for the default model
    and one loaded with LoadOptions.memory = .compact (a fourth worker, timed in the same rounds);
  * times Model.load of resnet152 from a page-cached .pth (bench-data/resnet152.pth, written here
    from torchvision's random initialisation if missing) next to reading that file into memory.
Peer processes run with the same thread settings; the machine may be shared, hence interleaving.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "bench-data"
BENCH = REPO / "Benchmarks" / ".build" / "release" / "bench"
ARCHS = ["resnet18", "resnet50", "resnet152", "resnext50_32x4d", "densenet121", "densenet201", "se_resnet50"]


def status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB (VmHWM: the peak resident set; VmRSS: the current one)."""
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def import_torchvision():
    import torch

    # The torchvision wheel is a CUDA build whose C ops cannot load against CPU torch; define the two op
    # schemas it registers at import time and keep the library object alive (REFERENCE-PYTHON.md).
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import torchvision

    return torchvision, lib


def torch_model(arch: str):
    import torch

    torchvision, lib = import_torchvision()
    torch.manual_seed(0)
    if arch == "se_resnet50":
        import timm  # Cadene's SE-ResNet-50 layout (stride on the first 1x1), as this package's se_resnet50

        model = timm.create_model("legacy_seresnet50", pretrained=False)
    else:
        model = getattr(torchvision.models, arch)(weights=None)
    return model.eval(), lib


def read_input(path: str, n: int, h: int, w: int):
    import numpy as np

    return np.fromfile(path, dtype=np.float32).reshape(n, 3, h, w)


def worker(kind: str) -> None:
    """Line protocol identical to `bench serve` (see Benchmarks/Sources/bench/main.swift)."""
    import numpy as np

    state: dict = {}
    if kind == "torch":
        import torch
    else:
        import onnxruntime as ort
    for line in sys.stdin:
        w = line.split()
        if not w:
            continue
        cmd = w[0]
        try:
            if cmd == "load":
                t0 = time.perf_counter()
                if kind == "torch":
                    state["model"], state["lib"] = torch_model(w[1])
                else:
                    state["path"] = w[2]
                print("ok", time.perf_counter() - t0, flush=True)
            elif cmd == "export":  # torch worker: write the ONNX file for the ort worker
                model = state["model"]
                x = torch.zeros(1, 3, 224, 224)
                with torch.inference_mode(False), torch.no_grad():
                    torch.onnx.export(model, (x,), w[1], opset_version=17, input_names=["input"],
                                      output_names=["logits"], dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}},
                                      dynamo=False)
                print("ok", flush=True)
            elif cmd == "input":
                x = read_input(w[1], int(w[2]), int(w[3]), int(w[4]))
                state["input"] = torch.from_numpy(x.copy()) if kind == "torch" else x
                print("ok", flush=True)
            elif cmd == "run":
                threads, iters = int(w[1]), int(w[2])
                times = []
                if kind == "torch":
                    torch.set_num_threads(threads)
                    with torch.inference_mode():
                        for _ in range(iters):
                            t0 = time.perf_counter()
                            y = state["model"](state["input"])
                            times.append((time.perf_counter() - t0) * 1000)
                else:
                    if state.get("threads") != threads:
                        state.pop("session", None)
                        so = ort.SessionOptions()
                        so.intra_op_num_threads = threads
                        so.inter_op_num_threads = 1
                        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                        state["session"] = ort.InferenceSession(state["path"], so, providers=["CPUExecutionProvider"])
                        state["threads"] = threads
                    sess = state["session"]
                    for _ in range(iters):
                        t0 = time.perf_counter()
                        y = sess.run(None, {"input": state["input"]})
                        times.append((time.perf_counter() - t0) * 1000)
                print("ok " + " ".join(f"{t:.3f}" for t in times), flush=True)
            elif cmd == "peak-reset":
                reset_peak()
                print("ok", status_kib("VmHWM"), flush=True)
            elif cmd == "peak":
                print("ok", status_kib("VmHWM"), flush=True)
            elif cmd == "rss":
                print("ok", status_kib("VmRSS"), flush=True)
            elif cmd == "budget":  # torch worker: checkpoint bytes, and the two largest activations of one image
                model = state["model"]
                weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
                sizes = []
                hooks = [m.register_forward_hook(
                    lambda _m, _i, o: sizes.append(o.numel() * o.element_size()) if torch.is_tensor(o) else None)
                    for m in model.modules()]
                with torch.inference_mode():
                    model(torch.zeros(1, 3, 224, 224))
                for h in hooks:
                    h.remove()
                sizes.sort(reverse=True)
                print("ok", weights, sizes[0] + sizes[1], flush=True)
            elif cmd == "quit":
                return
            else:
                print("error unknown command", cmd, flush=True)
        except Exception as e:  # report, keep serving
            print("error", repr(e).replace("\n", " "), flush=True)


class Worker:
    def __init__(self, name: str, argv: list[str], env: dict):
        self.name = name
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                                     cwd=REPO)

    def ask(self, line: str) -> list[str]:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline().split()
        if not reply or reply[0] != "ok":
            raise RuntimeError(f"{self.name}: {line!r} -> {' '.join(reply) or 'no reply (worker died)'}")
        return reply[1:]

    def cpu_ns(self) -> int:
        """CPU time used so far by all of the worker's threads, in nanoseconds (/proc/PID/task/*/schedstat)."""
        total = 0
        task_dir = Path(f"/proc/{self.proc.pid}/task")
        for task in task_dir.iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass  # a thread that ended meanwhile
        return total

    def settle(self, window: float = 0.005, limit: float = 1.0) -> None:
        """Returns once the worker has used less than a tenth of a core over `window` seconds (at most
        `limit` seconds): its thread pool has stopped spinning. ONNX Runtime's workers spin for 30-50 ms
        after a run returns; whatever engine ran next lost a core meanwhile (measured: the first of 3
        inferences of this package's resnet50 at batch 1 after an ORT turn 50.6 ms against 28.9, the
        second 30.2)."""
        end = time.monotonic() + limit
        before = self.cpu_ns()
        while time.monotonic() < end:
            time.sleep(window)
            now = self.cpu_ns()
            if now - before < window * 1e8:
                return
            before = now

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()


def baseline_rss(worker) -> int:
    """A worker's RSS in KiB before its model is loaded: asked twice, the second answer, so that the code
    of the worker's own command loop (run for the first time by the first question) is in the baseline
    and not counted as the model's memory."""
    worker.ask("rss")
    return int(worker.ask("rss")[0])


def make_input(n: int) -> str:
    import numpy as np

    path = DATA / f"input_{n}x3x224x224.f32"
    if not path.exists():
        rng = np.random.default_rng(1234)
        rng.standard_normal((n, 3, 224, 224), dtype=np.float32).tofile(path)
    return str(path)


def load_benchmark(rows: list[str]) -> None:
    import torch

    path = DATA / "resnet152.pth"
    if not path.exists():
        model, _lib = torch_model("resnet152")
        torch.save(model.state_dict(), path)
    out = subprocess.run([str(BENCH), "load", str(path), "resnet152", "7"], capture_output=True, text=True, cwd=REPO)
    w = out.stdout.split()
    if out.returncode != 0 or not w or w[0] != "ok":
        rows.append(f"load resnet152: failed: {out.stdout.strip()} {out.stderr.strip()[-300:]}")
        return
    read_min, read_med, load_min, load_med = float(w[2]), float(w[3]), float(w[5]), float(w[6])
    size = path.stat().st_size / 1e6
    t0 = time.perf_counter()
    torch.load(path, weights_only=True)
    torch_ms = (time.perf_counter() - t0) * 1000
    rows.append(f"resnet152 .pth ({size:.0f} MB, page cache): read into memory median {read_med:.1f} ms (min {read_min:.1f}); "
                f"Model.load until ready median {load_med:.1f} ms (min {load_min:.1f}); ratio of medians "
                f"{load_med / read_med:.2f} (target <= 2); torch.load for reference {torch_ms:.0f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", choices=["torch", "ort"], help=argparse.SUPPRESS)
    ap.add_argument("--archs", nargs="+", default=ARCHS)
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    ap.add_argument("--threads", nargs="+", type=int, default=[2, 1])
    ap.add_argument("--rounds", type=int, default=8, help="interleaved rounds per configuration")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--no-load", action="store_true", help="skip the Model.load timing")
    args = ap.parse_args()
    if args.worker:
        worker(args.worker)
        return 0

    DATA.mkdir(exist_ok=True)
    if not args.no_build:
        subprocess.run(["swift", "build", "-c", "release", "--package-path", str(REPO / "Benchmarks"),
                        "--scratch-path", str(REPO / "Benchmarks" / ".build")], check=True,
                       stdout=subprocess.DEVNULL)
    (DATA / "onnx").mkdir(exist_ok=True)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    started = time.time()
    header = (f"{'model':<16} {'batch':>5} {'thr':>3} | {'ours med':>9} {'min':>8} | {'ORT med':>8} {'min':>8} | "
              f"{'torch med':>9} {'min':>8} | {'/ORT':>5} {'/torch':>6} | {'RSS ours':>8} {'ORT':>6} {'torch':>6} MB")
    lines = [header, "-" * len(header)]
    print(header, flush=True)
    memory_header = (f"{'model':<16} {'batch':>5} | {'weights':>7} {'2 acts':>6} {'budget':>6} | {'ours':>6} {'ORT':>6} "
                     f"{'torch':>6} | {'compact':>7} {'med ms':>7} {'/ORT':>5} | {'within budget':<13}")
    memory_lines = [memory_header, "-" * len(memory_header)]
    for arch in args.archs:
        # Each worker's RSS before its model is loaded (libraries imported), for the model's own RSS.
        ours = Worker("ours", [str(BENCH), "serve"], env)
        compact = Worker("compact", [str(BENCH), "serve"], env)
        torchw = Worker("torch", [sys.executable, __file__, "--worker", "torch"], env)
        base = {w.name: baseline_rss(w) for w in (ours, compact, torchw)}
        try:
            ours.ask(f"load {arch}")
            compact.ask(f"load {arch} compact")
        except RuntimeError as e:
            line = f"{arch:<16} skipped: {e}"
            print(line, flush=True)
            lines.append(line)
            for w in (ours, compact, torchw):
                w.close()
            continue
        torchw.ask(f"load {arch}")
        weights, two_acts = (int(v) for v in torchw.ask("budget"))
        onnx_path = DATA / "onnx" / f"{arch}.onnx"
        if not onnx_path.exists():
            torchw.ask(f"export {onnx_path}")
        ortw = Worker("ort", [sys.executable, __file__, "--worker", "ort"], env)
        base["ort"] = baseline_rss(ortw)
        ortw.ask(f"load {arch} {onnx_path}")
        peers = [ours, ortw, torchw]
        for batch in args.batches:
            path = make_input(batch)
            for e in peers + [compact]:
                e.ask(f"input {path} {batch} 224 224")
            for threads in args.threads:
                # The compact model (LoadOptions.memory = .compact) takes its turns at 2 threads only.
                engines = peers + ([compact] if threads == 2 else [])
                for e in engines:
                    e.ask(f"run {threads} {args.warmup}")
                    e.settle()
                for e in engines:
                    e.ask("peak-reset")
                times = {e.name: [] for e in engines}
                # batch 1: 3 inferences per turn; batch 8: one per turn over twice the rounds (16 samples
                # per engine by default rather than 8, so that one slow phase of the machine moves the
                # median less)
                per_round = 3 if batch == 1 else 1
                rounds = args.rounds if batch == 1 else 2 * args.rounds
                for r in range(rounds):
                    k = r % len(engines)
                    order = engines[k:] + engines[:k]
                    for e in order:
                        times[e.name] += [float(t) for t in e.ask(f"run {threads} {per_round}")]
                        e.settle()  # the next engine starts on a quiet machine
                peaks = {e.name: int(e.ask("peak")[0]) for e in engines}
                med = {k: statistics.median(v) for k, v in times.items()}
                mn = {k: min(v) for k, v in times.items()}
                line = (f"{arch:<16} {batch:>5} {threads:>3} | {med['ours']:>9.1f} {mn['ours']:>8.1f} | "
                        f"{med['ort']:>8.1f} {mn['ort']:>8.1f} | {med['torch']:>9.1f} {mn['torch']:>8.1f} | "
                        f"{med['ours'] / med['ort']:>5.2f} {med['ours'] / med['torch']:>6.2f} | "
                        f"{peaks['ours'] / 1024:>8.0f} {peaks['ort'] / 1024:>6.0f} {peaks['torch'] / 1024:>6.0f}")
                print(line, flush=True)
                lines.append(line)
                if threads == 2:
                    mib = 1 << 20
                    budget = 1.2 * (weights + batch * two_acts) / mib
                    model = {k: (peaks[k] - base[k]) / 1024 for k in peaks}
                    met = [k for k in ("ours", "compact") if model[k] <= budget]
                    memory_lines.append(
                        f"{arch:<16} {batch:>5} | {weights / mib:>7.1f} {batch * two_acts / mib:>6.1f} {budget:>6.1f} | "
                        f"{model['ours']:>6.1f} {model['ort']:>6.1f} {model['torch']:>6.1f} | {model['compact']:>7.1f} "
                        f"{med['compact']:>7.1f} {med['compact'] / med['ort']:>5.2f} | {', '.join(met) or 'neither':<13}")
                    print(memory_lines[-1], flush=True)
        for e in peers + [compact]:
            e.close()
    if not args.no_load:
        load_benchmark(lines)
        print(lines[-1], flush=True)
    print(f"\n(latency in ms, median and min over {args.rounds} interleaved rounds of 3 inferences at batch 1 and "
          f"{2 * args.rounds} rounds of 1 at batch 8; ratios of medians; "
          f"peak RSS = VmHWM of each engine's process during that block; total {time.time() - started:.0f} s)")
    print("\n".join(["", "Summary", *lines]))
    if len(memory_lines) > 2:
        print("\n".join([
            "", "Memory at 2 threads, MiB: a model's RSS = its process's peak RSS during the block less the process's RSS",
            "before the model was loaded; weights = the PyTorch model's state dict; 2 acts = its two largest module",
            "outputs at this batch; budget = 1.2 x (weights + 2 acts); compact = this package with",
            "LoadOptions.memory = .compact (each weight held once; Winograd weights transformed per call), timed in the same rounds", *memory_lines]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
