#!/usr/bin/env bash
# One lent-GPU session's checks and figures, in order of value, each stage under its own time limit.
#
#   bash bench/gpu_session.sh [stages]      stages: env,tests,realtime,profile,grid,memory,showcases,e2e,ab,
#                                           tiling,ncu (default: all but ab, tiling and ncu)
#   bash bench/gpu_session.sh quick         env,tests,realtime,grid on 256³ and 384³ (stage limits 10.5 min),
#                                           for a session lent 15 device-minutes in all (start included)
#
# Run from the repository root on the GPU machine. Python packages the machine lacks travel as
# wheels in .whl/ (installed into /tmp/site). On the lent H100 (CuPy, NumPy, SciPy, Numba, h5py,
# matplotlib, tqdm present) those were trimesh, libigl, pydantic, pydantic_core, annotated-types,
# typing-inspection and soxr, fetched beforehand with
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl NAME==VERSION ...
# Computed modes can travel in .wscache/ (used as $WAVESOLVE_CACHE; a copy of ~/.cache/wavesolve).
# Both folders belong in .git/info/exclude. Logs go to $OUT (or ./gpu_logs) so a stage cut short
# still leaves its output: all stages in session.txt (the device tool returns at most 8 files),
# each stage also in /tmp/gpu_stage_logs.
# WS_GRID_SIZES sets the grid and ab stages' sizes; WS_AB_REALTIME=0 leaves out ab's real-time run.
# Stage ab times an earlier commit on the same machine (real time, and the 256³ and 384³ grids), from
# a copy in .ab/base (also in .git/info/exclude), made beforehand with
#   mkdir -p .ab/base && git archive COMMIT wavesolve bench scenes shaders pyproject.toml | tar -x -C .ab/base
# (each bench script imports the package beside it).
set -uo pipefail
stages="${1:-env,tests,realtime,profile,grid,memory,showcases,e2e}"
if [ "$stages" = quick ]; then
    stages=env,tests,realtime,grid
    export WS_GRID_SIZES="${WS_GRID_SIZES:-256,384}"
fi
log="${OUT:-gpu_logs}"
stage_log=/tmp/gpu_stage_logs
mkdir -p "$log" "$stage_log"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
[ -d .wscache ] && export WAVESOLVE_CACHE="$PWD/.wscache"
# the shader entry points need the package's metadata: an editable install without dependencies
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >"$log/install.txt" 2>&1 \
    || { echo "editable install failed:"; tail -5 "$log/install.txt"; }

has() { [[ ",$stages," == *",$1,"* ]]; }
run() {   # run LIMIT NAME COMMAND...
    local limit=$1 name=$2; shift 2
    echo "== $name (limit ${limit}s)"
    timeout "$limit" "$@" 2>&1 | tee "$stage_log/$name.txt" | tee -a "$log/session.txt"
    echo "== $name: exit ${PIPESTATUS[0]}"
}

if has env; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv
    nvcc --version | tail -2
    python3 -c "import cupy, numpy, numba, sys; print('python', sys.version.split()[0], 'cupy', cupy.__version__, \
'numpy', numpy.__version__, 'numba', numba.__version__, 'CUDA runtime', cupy.cuda.runtime.runtimeGetVersion())"
fi
has tests && run 240 tests python3 -m pytest -q -m gpu -p no:cacheprovider tests/
has realtime && run 150 realtime python3 bench/realtime.py --backend cupy --duration 1.0
has profile && run 150 profile python3 bench/gpu_profile.py --cases 88,256,384,384d --steps 20 --parts
grid_sizes="${WS_GRID_SIZES:-256,256s,384,128,200,200s}"      # the grid and ab stages' sizes
has grid && run 240 grid python3 bench/throughput.py --backends cupy --steps 200 --sizes "$grid_sizes" --grid-only
has memory && run 60 memory python3 bench/memory.py --gpu
has showcases && run 400 showcases python3 bench/throughput.py --backends cupy --steps 256 --showcases-only
if has e2e; then   # whole showcase runs, GPU against the compiled CPU backend (all cores here)
    # water_drops cut to its first bubble (0.03 s) and 0.05 s of ringing: the bubbles' block form
    # (outside the tree: in a folder of links to the showcase's files, which the scene names by relative paths)
    short=/tmp/ws_showcase && mkdir -p $short && ln -sf "$PWD"/scenes/showcase/* $short/
    sed 's/^duration = 0.6/duration = 0.08/' scenes/showcase/water_drops.toml >$short/water_drops_short.toml
    for scene in $short/water_drops_short.toml scenes/two_tone_sphere.toml \
            scenes/showcase/bowl_on_table.toml; do
        name=$(basename "$scene" .toml)
        for backend in cupy numba; do   # info's estimate, then the run it estimates
            run 60 "e2e_${name}_${backend}_info" python3 -m wavesolve.cli info "$scene" --backend $backend
            run 200 "e2e_${name}_$backend" python3 -m wavesolve.cli run "$scene" --backend $backend --no-progress \
                -o "/tmp/${name}_$backend.h5" --wav "/tmp/${name}_$backend.wav"
        done
        python3 bench/compare_results.py "/tmp/${name}_cupy.h5" "/tmp/${name}_numba.h5" | tee "$stage_log/e2e_$name.txt" \
            | tee -a "$log/session.txt"
    done
fi
has tiling && run 400 tiling python3 bench/gpu_tiling.py --cases 256,88,384,256d --repeats 20 --top 16
if has ncu; then   # the default cell kernel's interior and layer launches on 256³ under Nsight Compute
    run 200 ncu ncu --target-processes all -k regex:ws_cell32 --launch-count 2 --section SpeedOfLight \
        --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats \
        --metrics dram__bytes_read.sum,dram__bytes_write.sum,lts__t_bytes.sum python3 bench/gpu_tiling.py --ncu 256
fi
if has ab && [ -d .ab/base ]; then
    [ "${WS_AB_REALTIME:-1}" = 1 ] && run 90 ab_realtime python3 .ab/base/bench/realtime.py --backend cupy --duration 1.0
    run 150 ab_grid python3 .ab/base/bench/throughput.py --backends cupy --steps 200 --sizes "${WS_GRID_SIZES:-256,384}" \
        --grid-only
fi
exit 0
