// Fused steps on an empirical plan, four particles per invocation (shared/block.wgsl). The N
// training points (resident in `centers`) stream through workgroup memory in tiles of ROWS rows
// shared by the workgroup's GP particles; the logits and Wᵀe are register-blocked products
// against the tile (RB rows or coordinates × four particles per inner loop), with the CPU twin's
// online softmax over tiles (running max, Σe, Σe² and an unnormalised Wᵀe rescaled when the max
// grows). ROWS equals the CPU's block, so both round alike; the GPU's builtin exp is not the
// CPU's polynomial, so the two agree to round-off, not bit for bit. TILED: a tile goes through
// workgroup memory (D·ROWS ≤ TILE_FLOATS), else rows are read from `centers`.
//
// Training sets larger than a storage binding, or than lavapipe's loop budget allows in one
// invocation, are evaluated in parts (src/engine/gpu/training.rs): a dispatch runs one
// evaluation over the tiles of training points arg_begin() .. arg_end() (whole tiles, global
// indices) of the binding `centers`, which holds points from arg_base() on. Between parts the
// online softmax state (max, Σe, Σe², argmax, and the exact scheme's conditional uniform, the
// uniform inside the tile and the pick) waits in the scratch rows ROW_STATE ..; the unnormalised
// Wᵀe stays in ROW_V. The parts run the tiles of one whole evaluation in the same order with the
// same operations, so a split evaluation gives the bits of an unsplit one.
//
// A plan that draws once (flag HOLD_FLAG, plan::Draws::Once) holds each particle's drawn training
// point in its metadata (pmeta word 4: an exact u32 that start, branch, upload and download carry
// like the label, where a scratch row would need f32 indices and a copy in every host path): a
// lane that holds one computes the logits' argmax alone (the label, the same first pass) and steps
// towards its held row; a lane without one draws as every step does and keeps what it drew. Where
// all four lanes hold, the exponentials and the draw are skipped outright. A split evaluation
// copies a held row in the part whose points hold it, as it copies a pick.

var<workgroup> tile: array<f32, TILE_FLOATS>;

// Rows of the carried softmax state: m, Σe, Σe², argmax, u, pick, and the uniform inside the
// tile (indices as exact f32, < 2^24).
const ROW_STATE: u32 = ROW_LOGITS + ROWS;

// Whether point j is the dispatch's last evaluation and the recorder reads it (RECORDED_FLAG).
fn recorded_at(j: u32) -> bool {
    let last = prm.first + ((prm.phase + prm.ops - 1u) >> 1u);
    return (arg_flags() & RECORDED_FLAG) != 0u && j == last;
}

// Coordinate i of row r of the tile at local row t0 of the binding.
fn center(t0: u32, r: u32, i: u32) -> f32 {
    if (TILED) {
        return tile[r * D + i];
    }
    return centers[(t0 + r) * D + i];
}

fn evaluate_empirical(l: Lanes, j: u32, lid: u32) {
    let pi = j - prm.first;
    let boff = prm.off_b + pi * form_len(B_FORM, D);
    let bb = prm.off_bias + pi * K;
    let first = (arg_flags() & 1u) != 0u;
    let last = (arg_flags() & 2u) != 0u;
    // Draws::Once: the lanes that hold a drawn point need only their label.
    let holds = DRAWS && (arg_flags() & HOLD_FLAG) != 0u;
    var drawn = vec4<u32>(NO_LABEL);
    if (holds) {
        drawn = held_points(l);
    }
    let held = drawn != vec4<u32>(NO_LABEL);
    // Held lanes evaluate the posterior (keeping their points) where the recorder reads it.
    let recorded = recorded_at(j);
    let label_only = all(held) && !recorded;
    var m = vec4<f32>(0.0);
    var s = vec4<f32>(0.0);
    var sq = vec4<f32>(0.0);
    var best = vec4<u32>(0u);
    // The exact scheme's streaming draw (step::draw_tile): a conditional uniform per particle
    // that decides the tile, and an independent one that picks the point inside it.
    var u = vec4<f32>(0.0);
    var within = vec4<f32>(0.0);
    var picked = vec4<u32>(0u);
    if (first) {
        apply_rows(B_FORM, boff, true, 0u, ROW_A, l);
        if (DRAWS && !label_only) {
            let w = draw_uniform_pairs(l, j);
            u = w.tile;
            within = w.within;
        }
    } else {
        m = s4(ROW_STATE, l);
        s = s4(ROW_STATE + 1u, l);
        sq = s4(ROW_STATE + 2u, l);
        best = vec4<u32>(s4(ROW_STATE + 3u, l));
        u = s4(ROW_STATE + 4u, l);
        picked = vec4<u32>(s4(ROW_STATE + 5u, l));
        within = s4(ROW_STATE + 6u, l);
    }
    let begin = arg_begin();
    let end = arg_end();
    for (var t0 = begin; t0 < end; t0 += ROWS) {
        let rows = min(ROWS, end - t0);
        let local = t0 - arg_base();
        if (TILED) {
            workgroupBarrier();
            for (var e = lid; e < rows * D; e += WG) {
                tile[e] = centers[local * D + e];
            }
            workgroupBarrier();
        }
        // Logits of the tile, RB rows at a time, into scratch; the tile's max and argmax.
        var tmax = vec4<f32>(0.0);
        var targ = vec4<u32>(t0);
        for (var r0 = 0u; r0 < rows; r0 += RB) {
            var acc: array<vec4<f32>, RB>;
            var rr: array<u32, RB>;
            for (var q = 0u; q < RB; q++) {
                rr[q] = min(r0 + q, rows - 1u);
                acc[q] = vec4<f32>(plan[bb + t0 + rr[q]]);
            }
            for (var i = 0u; i < D; i++) {
                let y = s4(ROW_A + i, l);
                for (var q = 0u; q < RB; q++) {
                    acc[q] = fma(vec4<f32>(center(local, rr[q], i)), y, acc[q]);
                }
            }
            for (var q = 0u; q < RB; q++) {
                let r = r0 + q;
                if (r < rows) {
                    // (A label needs no weights: the logits are kept only for them.)
                    if (!label_only) {
                        set_s4(ROW_LOGITS + r, l, acc[q]);
                    }
                    let take = (acc[q] > tmax) | vec4<bool>(r == 0u);
                    tmax = select(tmax, acc[q], take);
                    targ = select(targ, vec4<u32>(t0 + r), take);
                }
            }
        }
        var scale = vec4<f32>(0.0);
        if (first && t0 == begin) {
            m = tmax;
            best = targ;
        } else {
            let grows = tmax > m;
            if (!label_only) {
                scale = select(vec4<f32>(1.0), exp(m - tmax), grows);
            }
            m = select(m, tmax, grows);
            best = select(best, targ, grows);
        }
        // (No `continue` below: the tile loads' barriers need the loop uniform.)
        if (!label_only) {
            s = s * scale;
            sq = sq * scale * scale;
            for (var r = 0u; r < rows; r++) {
                let e = exp(s4(ROW_LOGITS + r, l) - m);
                set_s4(ROW_LOGITS + r, l, e);
                s += e;
                sq = fma(e, e, sq);
            }
            if (DRAWS) {
                var tile_sum = vec4<f32>(0.0);
                for (var r = 0u; r < rows; r++) {
                    tile_sum += s4(ROW_LOGITS + r, l);
                }
                let p = tile_sum / s;
                // (A lane that holds its point draws nothing.)
                let inside = (u < p) & !held;
                u = min(select((u - p) / (1.0 - p), u / p, inside), vec4<f32>(BELOW_ONE));
                let goal = within * tile_sum;
                picked = select(picked, vec4<u32>(t0 + rows - 1u), inside);
                var cum = vec4<f32>(0.0);
                var found = !inside;
                for (var r = 0u; r < rows; r++) {
                    cum += s4(ROW_LOGITS + r, l);
                    let hit = (cum > goal) & !found;
                    picked = select(picked, vec4<u32>(t0 + r), hit);
                    found = found | hit;
                }
                // A split evaluation cannot read the pick's row at the end (it may lie in
                // another binding): the row is copied now, for the lanes whose pick moved into
                // this tile.
                if (!(first && last) && any(inside)) {
                    let o = select(vec4<u32>(0u), picked - vec4<u32>(t0), inside);
                    for (var i = 0u; i < D; i++) {
                        let c = vec4<f32>(center(local, o.x, i), center(local, o.y, i),
                                          center(local, o.z, i), center(local, o.w, i));
                        set_s4(ROW_V + i, l, select(s4(ROW_V + i, l), c, inside));
                    }
                }
            } else {
                // v ← v·scale + Σ_r e_r a_r, RB coordinates at a time.
                let keep = scale != vec4<f32>(0.0);
                for (var i0 = 0u; i0 < D; i0 += RB) {
                    var acc: array<vec4<f32>, RB>;
                    var ii: array<u32, RB>;
                    for (var q = 0u; q < RB; q++) {
                        ii[q] = min(i0 + q, D - 1u);
                        acc[q] = select(vec4<f32>(0.0), s4(ROW_V + ii[q], l) * scale, keep);
                    }
                    for (var r = 0u; r < rows; r++) {
                        let e = s4(ROW_LOGITS + r, l);
                        for (var q = 0u; q < RB; q++) {
                            acc[q] = fma(e, vec4<f32>(center(local, r, ii[q])), acc[q]);
                        }
                    }
                    for (var q = 0u; q < RB; q++) {
                        if (i0 + q < D) {
                            set_s4(ROW_V + i0 + q, l, acc[q]);
                        }
                    }
                }
            }
        }
    }
    // A split evaluation: the lanes whose held point lies in this part copy its row now (the
    // last part may not bind it).
    if (holds && !(first && last)) {
        let here = held & (drawn >= vec4<u32>(begin)) & (drawn < vec4<u32>(end));
        if (any(here)) {
            let o = select(vec4<u32>(0u), drawn - vec4<u32>(arg_base()), here);
            for (var i = 0u; i < D; i++) {
                let c = vec4<f32>(centers[o.x * D + i], centers[o.y * D + i],
                                  centers[o.z * D + i], centers[o.w * D + i]);
                set_s4(ROW_V + i, l, select(s4(ROW_V + i, l), c, here));
            }
        }
    }
    if (!last) {
        set_s4(ROW_STATE, l, m);
        set_s4(ROW_STATE + 1u, l, s);
        set_s4(ROW_STATE + 2u, l, sq);
        set_s4(ROW_STATE + 3u, l, vec4<f32>(best));
        set_s4(ROW_STATE + 4u, l, u);
        set_s4(ROW_STATE + 5u, l, vec4<f32>(picked));
        set_s4(ROW_STATE + 6u, l, within);
        return;
    }
    let inv = 1.0 / s;
    if (DRAWS) {
        if (first) {
            // One part: every row is bound (from point 0).
            take_rows(1u, 0u, select(picked, drawn, held), l);
        }
        if (holds && !label_only) {
            hold_points(l, picked, held);
        }
    } else {
        for (var i = 0u; i < D; i++) {
            set_s4(ROW_V + i, l, s4(ROW_V + i, l) * inv);
        }
    }
    // A held evaluation computes no weights: its purity is NaN (as on the CPU).
    set_s4(ROW_PURITY, l, select(sq * inv * inv, vec4<f32>(nan()), held & vec4<bool>(!recorded)));
    set_labels(l, best, j);
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = group_index(wid, nwg);
    // Whole padding workgroups leave at once; inside a workgroup every invocation takes part in
    // the tile loads and barriers.
    if (g * GP >= prm.n) {
        return;
    }
    let l = lanes(g, lid);
    for (var o = 0u; o < prm.ops; o++) {
        let op = prm.phase + o;
        let j = prm.first + (op >> 1u);
        if ((op & 1u) == 0u) {
            evaluate_empirical(l, j, lid);
        } else {
            update(l, j);
        }
    }
}
