//! Buffers and dispatches: storage buffers (initialised or zeroed), recording a dispatch with its
//! [`Bindings`] (many dispatches sharing one bind group, their parameters at dynamic offsets of
//! one buffer: [`ParamBlocks`]; a lone dispatch's parameters in the engine's one buffer for
//! them: [`Single`]), reading a buffer back, waiting for the device.

use std::time::Instant;

use anyhow::{Result, anyhow, bail};
use wgpu::util::DeviceExt;

use super::GpuEngine;
use super::layout::{Bindings, Params, params_size};

/// Advances whose work takes less than this (seconds) are left in flight ([`GpuEngine::settle`]).
pub(super) const PIPELINE_SECONDS: f64 = 0.05;

/// The advance left running on the device, and whether advances have been short.
#[derive(Default)]
pub(super) struct InFlight {
    pending: Option<wgpu::SubmissionIndex>,
    short: bool,
}

/// Largest workgroup count per grid dimension we use (the WebGPU minimum).
const GRID_X: usize = 65535;

pub(super) fn round_up(n: usize, m: usize) -> usize {
    n.div_ceil(m) * m
}

/// A 2-D grid of at least `groups` workgroups.
fn grid(groups: usize) -> (u32, u32) {
    let groups = groups.max(1);
    let x = groups.min(GRID_X);
    (x as u32, groups.div_ceil(x) as u32)
}

pub(super) fn bytes_of<T: bytemuck::Pod>(v: &[T]) -> &[u8] {
    bytemuck::cast_slice(v)
}

impl GpuEngine {
    pub(super) fn encoder(&self) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
    }

    pub(super) fn check_errors(&self) -> Result<()> {
        let mut errs = self.errors.lock().expect("gpu errors");
        if !errs.is_empty() {
            let msg = errs.join("; ");
            errs.clear();
            bail!("gpu: {msg}");
        }
        Ok(())
    }

    /// Waits for all submitted work; reports validation errors and device loss.
    pub(super) fn wait(&self) -> Result<()> {
        self.poll_wait(wgpu::PollType::wait_indefinitely())?;
        self.check_errors()
    }

    /// The end of an advance whose last submission is `last`, submitted at `at`: waits for the
    /// previous advance's submission if it was left in flight, then for this one too unless
    /// advances have been short (under [`PIPELINE_SECONDS`]): short ones are left to run while
    /// the host prepares the next (the device does not idle between segments, the host is never
    /// more than one ahead), long ones return done, so progress, segment timing and stops are
    /// as exact as before where a wait costs nothing. Reports validation errors.
    pub(super) fn settle(&self, last: Option<wgpu::SubmissionIndex>, at: Instant) -> Result<()> {
        let mut flight = self.in_flight.lock().expect("in flight");
        if let Some(previous) = flight.pending.take() {
            let clock = Instant::now();
            self.wait_for(previous)?;
            // A long wait for the previous advance: they are no longer short.
            flight.short = clock.elapsed().as_secs_f64() < PIPELINE_SECONDS;
        }
        if let Some(last) = last {
            if flight.short {
                flight.pending = Some(last);
            } else {
                self.wait_for(last)?;
                flight.short = at.elapsed().as_secs_f64() < PIPELINE_SECONDS;
            }
        }
        self.check_errors()
    }

    fn wait_for(&self, index: wgpu::SubmissionIndex) -> Result<()> {
        self.poll_wait(wgpu::PollType::Wait {
            submission_index: Some(index),
            timeout: None,
        })
    }

    fn poll_wait(&self, until: wgpu::PollType) -> Result<()> {
        self.device
            .poll(until)
            .map(drop)
            .map_err(|e| anyhow!("gpu: device lost or timed out while waiting ({e})"))
    }

    pub(super) fn storage_init(
        &self,
        label: &str,
        data: &[u8],
        extra: wgpu::BufferUsages,
    ) -> wgpu::Buffer {
        let mut padded;
        let contents = if data.len() < 16 || !data.len().is_multiple_of(4) {
            padded = data.to_vec();
            padded.resize(round_up(data.len().max(16), 4), 0);
            &padded[..]
        } else {
            data
        };
        let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: contents.len() as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | extra,
            mapped_at_creation: false,
        });
        self.queue.write_buffer(&buf, 0, contents);
        buf
    }

    pub(super) fn storage_zeroed(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: round_up(bytes.max(16) as usize, 4) as u64,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Records one dispatch in an encoder of its own and submits it. Its parameters go through
    /// the engine's one uniform buffer for lone dispatches ([`Single`]), rewritten in place
    /// (a queue write lands before the submission that follows it and after those before), so
    /// no buffer is made per dispatch; the bind group is the dispatch's own, as its storage
    /// buffers are.
    pub(super) fn dispatch_alone(
        &self,
        pipeline: &wgpu::ComputePipeline,
        params: &Params,
        bindings: Bindings,
        groups: usize,
    ) {
        // Held from the write to the submission, so two threads cannot swap their parameters.
        let single = self.single.lock().expect("single params");
        self.queue
            .write_buffer(&single.0, 0, bytemuck::bytes_of(params));
        let bind = self.bind_group(&single.0, bindings);
        let mut enc = self.encoder();
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: None,
            });
            record(&mut pass, pipeline, &bind, 0, groups);
        }
        self.queue.submit([enc.finish()]);
    }

    /// A bind group of `bindings` with the parameter blocks of `params` (bound at a dynamic
    /// offset).
    pub(super) fn bind_group(&self, params: &wgpu::Buffer, bindings: Bindings) -> wgpu::BindGroup {
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: params,
                offset: 0,
                size: Some(params_size()),
            }),
        }];
        for (i, b) in bindings.slots().iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: b.unwrap_or(&self.dummies[i]).as_entire_binding(),
            });
        }
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &self.bgl,
            entries: &entries,
        })
    }

    /// Copies `bytes` bytes of a buffer to the host.
    pub(super) fn read_back(&self, buf: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let size = round_up(bytes.max(4) as usize, 4) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("staging"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.encoder();
        enc.copy_buffer_to_buffer(buf, 0, &staging, 0, size);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| anyhow!("gpu: buffer mapping was dropped"))?
            .map_err(|e| anyhow!("gpu: could not map a buffer for reading ({e})"))?;
        let out = staging
            .get_mapped_range(..)
            .map_err(|e| anyhow!("gpu: {e}"))?
            .to_vec();
        staging.unmap();
        Ok(out[..bytes as usize].to_vec())
    }

    /// Blocks `Params` apart in a [`ParamBlocks`] buffer: the adapter's uniform offset alignment.
    pub(super) fn params_stride(&self) -> usize {
        let align = self.device.limits().min_uniform_buffer_offset_alignment as usize;
        round_up(std::mem::size_of::<Params>(), align.max(16))
    }

    /// Particles of dimension `rows` per binding under the binding limit.
    pub(super) fn fits(&self, rows: usize) -> usize {
        (self.max_binding / (4 * rows.max(1) as u64)) as usize
    }
}

/// One dispatch of a compute pass: pipeline, bind group with its parameter block at `offset`.
pub(super) fn record(
    pass: &mut wgpu::ComputePass,
    pipeline: &wgpu::ComputePipeline,
    bind: &wgpu::BindGroup,
    offset: u32,
    groups: usize,
) {
    let (gx, gy) = grid(groups);
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, bind, &[offset]);
    pass.dispatch_workgroups(gx, gy, 1);
}

/// The uniform buffer of the engine's lone dispatches ([`GpuEngine::dispatch_alone`]: start,
/// tally, branch, the probes and warm-ups), one `Params` block rewritten before each.
pub(super) struct Single(wgpu::Buffer);

impl Single {
    pub fn new(device: &wgpu::Device) -> Self {
        Single(device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params (lone dispatches)"),
            size: params_size().get(),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }
}

/// The parameters of many dispatches in one uniform buffer, a block every `stride` bytes, each
/// bound at its dynamic offset: one buffer and one bind group per group of dispatches instead of
/// one of each per dispatch.
pub(super) struct ParamBlocks {
    stride: usize,
    bytes: Vec<u8>,
}

impl ParamBlocks {
    pub fn new(stride: usize) -> Self {
        ParamBlocks {
            stride,
            bytes: Vec::new(),
        }
    }

    /// Appends a block; its dynamic offset.
    pub fn push(&mut self, params: &Params) -> u32 {
        let offset = self.bytes.len();
        self.bytes.extend_from_slice(bytemuck::bytes_of(params));
        self.bytes.resize(offset + self.stride, 0);
        offset as u32
    }

    /// The uniform buffer of the blocks so far.
    pub fn buffer(&self, device: &wgpu::Device) -> wgpu::Buffer {
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: &self.bytes,
            usage: wgpu::BufferUsages::UNIFORM,
        })
    }
}
