// Row i of `L v` for a matrix stored in `plan` at `off` in `form` (scalar, diagonal, dense
// row-major), the twin of step::apply. The vector is x (from_x) or scratch rows base..base+d.

fn vget(from_x: bool, base: u32, c: u32, p: u32) -> f32 {
    if (from_x) {
        return xget(c, p);
    }
    return sget(base + c, p);
}

fn apply_row(form: u32, off: u32, i: u32, from_x: bool, base: u32, p: u32) -> f32 {
    if (form == FORM_SCALAR) {
        return plan[off] * vget(from_x, base, i, p);
    } else if (form == FORM_DIAGONAL) {
        return plan[off + i] * vget(from_x, base, i, p);
    }
    let d = prm.d;
    let row = off + i * d;
    var acc = 0.0;
    for (var c = 0u; c < d; c++) {
        acc = fma(plan[row + c], vget(from_x, base, c, p), acc);
    }
    return acc;
}
