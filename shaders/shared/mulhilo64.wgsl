// Philox's 32×32→64-bit multiply with the adapter's native 64-bit integers (SHADER_INT64): one
// wide multiply instead of four narrow ones and the carries. Same words as mulhilo16.wgsl.

// (hi, lo) of the 64-bit product a·b.
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let p = u64(a) * u64(b);
    return vec2<u32>(u32(p >> 32u), u32(p));
}
