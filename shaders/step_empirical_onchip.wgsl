// Fused steps on an empirical plan, the on-chip variant (shared/onchip.wgsl): one particle per
// invocation, its x, B x / M x and v in private arrays across the fused steps of a dispatch, one
// tile's ROWS logits (then exponentials) in a private array. The N training points (resident in
// `centers`) stream through workgroup memory a tile of ROWS rows × TW coordinates at a time,
// loaded once by the whole workgroup and shared by its OWG particles: a tile of d ≤ TW is loaded
// once, a wider one in CHUNKS slices of TW coordinates for the logits and again for Wᵀe (the
// last slice is reused). Global memory is read for the coefficients and the tiles (each word
// once per workgroup) and written for x, the label and the rows the recorder and the next
// dispatch read, once per dispatch.
//
// Twin of step_empirical.wgsl (and so of the CPU's step::evaluate_empirical): the same online
// softmax over tiles of ROWS = the CPU's block (running max, Σe, Σe² and an unnormalised Wᵀe
// rescaled when the max grows), each logit summed from its bias over ascending coordinates and
// each coordinate of Wᵀe over ascending rows in fused multiply-adds, the exact scheme's streaming
// draw with one conditional uniform for the tile and another for the point inside it, so it
// agrees with the blocked kernel as that one does with the CPU. It runs a whole evaluation per
// dispatch (the host uses it only where the training set is one part, src/engine/gpu/variant.rs),
// so no softmax state is carried between dispatches. On a plan that draws once (HOLD_FLAG) a
// particle that holds its drawn point (`drawn`, shared/onchip.wgsl) computes only the logits'
// argmax: no exponentials, no draw (twin of step::evaluate).

var<workgroup> tile: array<f32, TILE_FLOATS>;

// Whether point j is the dispatch's last evaluation and the recorder reads it (RECORDED_FLAG).
fn recorded_at(j: u32) -> bool {
    let last = prm.first + ((prm.phase + prm.ops - 1u) >> 1u);
    return (arg_flags() & RECORDED_FLAG) != 0u && j == last;
}

// One tile's logits, then their exponentials.
var<private> e: array<f32, ROWS>;

// Coordinate slices of a tile.
const CHUNKS: u32 = (D + TW - 1u) / TW;

// Coordinates c0 .. c0 + TW of rows t0 .. t0 + rows of the binding into `tile` (row r at r·TW).
// Every invocation of the workgroup takes part (uniform control flow).
fn load_tile(t0: u32, rows: u32, c0: u32, lid: u32) {
    workgroupBarrier();
    let w = min(TW, D - c0);
    for (var i = lid; i < rows * w; i += OWG) {
        let r = i / w;
        let c = i - r * w;
        tile[r * TW + c] = centers[(t0 + r) * D + c0 + c];
    }
    workgroupBarrier();
}

fn evaluate_onchip(j: u32, key: vec2<u32>, id: vec2<u32>, lid: u32) -> Evaluated {
    let pi = j - prm.first;
    let bb = prm.off_bias + pi * K;
    apply_x(B_FORM, prm.off_b + pi * form_len(B_FORM, D));
    let holds = DRAWS && (arg_flags() & HOLD_FLAG) != 0u;
    let held = holds && drawn != NO_LABEL;
    // A held particle evaluates the posterior (keeping its point) where the recorder reads it.
    let label_only = held && !recorded_at(j);
    var m = 0.0;
    var s = 0.0;
    var sq = 0.0;
    var best = 0u;
    // The exact scheme's streaming draw (step::draw_tile): a conditional uniform that decides
    // the tile, and an independent one (word 1 of the same Philox output) that picks the point
    // inside it.
    var u = 0.0;
    var within = 0.0;
    var picked = 0u;
    if (DRAWS && !held) {
        let w = rng_words(key, id, j, PICK_BLOCK);
        u = uniform01(w.x);
        within = uniform01(w.y);
    }
    let begin = arg_begin();
    let end = arg_end();
    for (var t0 = begin; t0 < end; t0 += ROWS) {
        let rows = min(ROWS, end - t0);
        let local = t0 - arg_base();
        // Logits of the tile, RB rows at a time, slice by slice (each row's sum continues over
        // ascending coordinates).
        for (var ch = 0u; ch < CHUNKS; ch++) {
            let c0 = ch * TW;
            let w = min(TW, D - c0);
            load_tile(local, rows, c0, lid);
            for (var r0 = 0u; r0 < rows; r0 += RB) {
                var acc: array<f32, RB>;
                var rr: array<u32, RB>;
                for (var q = 0u; q < RB; q++) {
                    rr[q] = min(r0 + q, rows - 1u);
                    if (ch == 0u) {
                        acc[q] = plan[bb + t0 + rr[q]];
                    } else {
                        acc[q] = e[rr[q]];
                    }
                }
                for (var c = 0u; c < w; c++) {
                    let yc = y[c0 + c];
                    for (var q = 0u; q < RB; q++) {
                        acc[q] = fma(tile[rr[q] * TW + c], yc, acc[q]);
                    }
                }
                for (var q = 0u; q < RB; q++) {
                    if (r0 + q < rows) {
                        e[r0 + q] = acc[q];
                    }
                }
            }
        }
        // The tile's max and argmax (the first on a tie), then the running state.
        var tmax = 0.0;
        var targ = t0;
        for (var r = 0u; r < rows; r++) {
            if (e[r] > tmax || r == 0u) {
                tmax = e[r];
                targ = t0 + r;
            }
        }
        var scale = 0.0;
        if (t0 == begin) {
            m = tmax;
            best = targ;
        } else {
            let grows = tmax > m;
            if (!label_only) {
                scale = select(1.0, exp(m - tmax), grows);
            }
            m = select(m, tmax, grows);
            best = select(best, targ, grows);
        }
        // (No `continue` below: the tile loads' barriers need the loop uniform.)
        if (DRAWS) {
            if (!label_only) {
                let sums = weigh(rows, m, scale, vec2<f32>(s, sq));
                s = sums.x;
                sq = sums.y;
            }
            if (!held) {
                var tile_sum = 0.0;
                for (var r = 0u; r < rows; r++) {
                    tile_sum += e[r];
                }
                let p = tile_sum / s;
                let inside = u < p;
                u = min(select((u - p) / (1.0 - p), u / p, inside), BELOW_ONE);
                let goal = within * tile_sum;
                picked = select(picked, t0 + rows - 1u, inside);
                var cum = 0.0;
                var found = !inside;
                for (var r = 0u; r < rows; r++) {
                    cum += e[r];
                    let hit = (cum > goal) && !found;
                    picked = select(picked, t0 + r, hit);
                    found = found || hit;
                }
            }
        } else {
            let sums = weigh(rows, m, scale, vec2<f32>(s, sq));
            s = sums.x;
            sq = sums.y;
            weighted_centers(local, rows, scale, lid);
        }
    }
    let inv = 1.0 / s;
    if (DRAWS) {
        // The drawn training point, or the held one (take_rows of the blocked kernel).
        var k = picked;
        if (held) {
            k = drawn;
        } else if (holds) {
            drawn = picked;
            drew = true;
        }
        let row = (k - arg_base()) * D;
        for (var i = 0u; i < D; i++) {
            v[i] = centers[row + i];
        }
    } else {
        for (var i = 0u; i < D; i++) {
            v[i] = v[i] * inv;
        }
    }
    if (label_only) {
        // No weights: the purity is NaN (as on the CPU).
        return Evaluated(nan(), best);
    }
    return Evaluated(sq * inv * inv, best);
}

// e ← exp(e − m) over the tile's rows, the running (Σe, Σe²) rescaled by `scale` first.
fn weigh(rows: u32, m: f32, scale: f32, sums: vec2<f32>) -> vec2<f32> {
    var s = sums.x * scale;
    var sq = sums.y * scale * scale;
    for (var r = 0u; r < rows; r++) {
        let ex = exp(e[r] - m);
        e[r] = ex;
        s += ex;
        sq = fma(ex, ex, sq);
    }
    return vec2<f32>(s, sq);
}

// v ← v·scale + Σ_r e_r a_r over the tile at local row `local`, RB coordinates at a time, slices
// in reverse (the last one loaded is still in the tile).
fn weighted_centers(local: u32, rows: u32, scale: f32, lid: u32) {
    let keep = scale != 0.0;
    for (var k = 0u; k < CHUNKS; k++) {
        let ch = CHUNKS - 1u - k;
        let c0 = ch * TW;
        let w = min(TW, D - c0);
        if (k > 0u) {
            load_tile(local, rows, c0, lid);
        }
        for (var i0 = 0u; i0 < w; i0 += RB) {
            var acc: array<f32, RB>;
            var ii: array<u32, RB>;
            for (var q = 0u; q < RB; q++) {
                ii[q] = min(i0 + q, w - 1u);
                acc[q] = select(0.0, v[c0 + ii[q]] * scale, keep);
            }
            for (var r = 0u; r < rows; r++) {
                let er = e[r];
                for (var q = 0u; q < RB; q++) {
                    acc[q] = fma(er, tile[r * TW + ii[q]], acc[q]);
                }
            }
            for (var q = 0u; q < RB; q++) {
                if (i0 + q < w) {
                    v[c0 + i0 + q] = acc[q];
                }
            }
        }
    }
}

@compute @workgroup_size(OWG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    run_onchip(group_index(wid, nwg), lid);
}
