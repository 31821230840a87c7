//! Buffers and dispatches: storage buffers (initialised or zeroed), recording a dispatch with its
//! [`Bindings`], reading a buffer back, waiting for the device.

use anyhow::{Result, anyhow, bail};
use wgpu::util::DeviceExt;

use super::GpuEngine;
use super::layout::{Bindings, Params};

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
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| anyhow!("gpu: device lost or timed out while waiting ({e})"))?;
        self.check_errors()
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

    /// Records one dispatch in an encoder of its own and submits it.
    pub(super) fn dispatch_alone(
        &self,
        pipeline: &wgpu::ComputePipeline,
        params: &Params,
        bindings: Bindings,
        groups: usize,
    ) {
        let mut enc = self.encoder();
        self.dispatch(&mut enc, pipeline, params, bindings, groups);
        self.queue.submit([enc.finish()]);
    }

    /// Records one dispatch.
    pub(super) fn dispatch(
        &self,
        enc: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        params: &Params,
        bindings: Bindings,
        groups: usize,
    ) {
        let uniform = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("params"),
                contents: bytemuck::bytes_of(params),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: uniform.as_entire_binding(),
        }];
        for (i, b) in bindings.slots().iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: b.unwrap_or(&self.dummies[i]).as_entire_binding(),
            });
        }
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &self.bgl,
            entries: &entries,
        });
        let (gx, gy) = grid(groups);
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: None,
            timestamp_writes: None,
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(gx, gy, 1);
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

    /// Particles of dimension `rows` per binding under the binding limit.
    pub(super) fn fits(&self, rows: usize) -> usize {
        (self.max_binding / (4 * rows.max(1) as u64)) as usize
    }
}
