// CUDA kernels of multi-scale deformable attention: bilinear sampling of per-head value maps at learnt locations,
// weighted by attention weights. One thread per (batch, query, head, channel); the backward pass scatters into
// value with atomics and reduces the location/weight gradients over channels with atomics as well.
// Sampling convention (matches grid_sample, align_corners=False, zero padding): pixel coordinate = loc * size - 0.5.

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <vector>

namespace {

constexpr int kThreads = 256;

inline int blocks_for(int64_t n) { return static_cast<int>((n + kThreads - 1) / kThreads); }

// Value of map `base` (layout [H*W, heads, channels] strided by `row_stride`) at integer pixel (y, x), 0 outside.
template <typename T>
__device__ __forceinline__ T pixel(const T* base, int y, int x, int height, int width, int64_t row_stride) {
  if (y < 0 || x < 0 || y >= height || x >= width) return T(0);
  return base[(static_cast<int64_t>(y) * width + x) * row_stride];
}

template <typename T>
__global__ void msda_forward_kernel(int64_t total, const T* value, const int64_t* shapes, const int64_t* starts,
                                    const T* loc, const T* weight, T* out, int spatial, int heads, int channels,
                                    int levels, int points, int queries) {
  int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (index >= total) return;
  const int c = index % channels;
  const int m = (index / channels) % heads;
  const int q = (index / (channels * heads)) % queries;
  const int64_t b = index / (static_cast<int64_t>(channels) * heads * queries);
  const int64_t row_stride = static_cast<int64_t>(heads) * channels;
  const T* value_b = value + b * spatial * row_stride + m * channels + c;
  const int64_t lp_offset = ((b * queries + q) * heads + m) * levels * points;
  T acc = T(0);
  for (int l = 0; l < levels; ++l) {
    const int height = static_cast<int>(shapes[2 * l]);
    const int width = static_cast<int>(shapes[2 * l + 1]);
    const T* level_value = value_b + starts[l] * row_stride;
    for (int p = 0; p < points; ++p) {
      const int64_t lp = lp_offset + l * points + p;
      const T x = loc[2 * lp] * width - T(0.5);
      const T y = loc[2 * lp + 1] * height - T(0.5);
      if (!(y > T(-1) && x > T(-1) && y < height && x < width)) continue;
      const int y0 = static_cast<int>(floor(y));
      const int x0 = static_cast<int>(floor(x));
      const T ly = y - y0, lx = x - x0, hy = T(1) - ly, hx = T(1) - lx;
      const T sample = hy * hx * pixel(level_value, y0, x0, height, width, row_stride) +
                       hy * lx * pixel(level_value, y0, x0 + 1, height, width, row_stride) +
                       ly * hx * pixel(level_value, y0 + 1, x0, height, width, row_stride) +
                       ly * lx * pixel(level_value, y0 + 1, x0 + 1, height, width, row_stride);
      acc += weight[lp] * sample;
    }
  }
  out[index] = acc;
}

template <typename T>
__device__ __forceinline__ void scatter(T* base, int y, int x, int height, int width, int64_t row_stride, T amount) {
  if (y < 0 || x < 0 || y >= height || x >= width) return;
  atomicAdd(base + (static_cast<int64_t>(y) * width + x) * row_stride, amount);
}

template <typename T>
__global__ void msda_backward_kernel(int64_t total, const T* value, const int64_t* shapes, const int64_t* starts,
                                     const T* loc, const T* weight, const T* grad_out, T* grad_value, T* grad_loc,
                                     T* grad_weight, int spatial, int heads, int channels, int levels, int points,
                                     int queries) {
  int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (index >= total) return;
  const int c = index % channels;
  const int m = (index / channels) % heads;
  const int q = (index / (channels * heads)) % queries;
  const int64_t b = index / (static_cast<int64_t>(channels) * heads * queries);
  const int64_t row_stride = static_cast<int64_t>(heads) * channels;
  const int64_t value_offset = b * spatial * row_stride + m * channels + c;
  const T* value_b = value + value_offset;
  T* grad_value_b = grad_value + value_offset;
  const int64_t lp_offset = ((b * queries + q) * heads + m) * levels * points;
  const T g = grad_out[index];
  for (int l = 0; l < levels; ++l) {
    const int height = static_cast<int>(shapes[2 * l]);
    const int width = static_cast<int>(shapes[2 * l + 1]);
    const T* level_value = value_b + starts[l] * row_stride;
    T* level_grad = grad_value_b + starts[l] * row_stride;
    for (int p = 0; p < points; ++p) {
      const int64_t lp = lp_offset + l * points + p;
      const T x = loc[2 * lp] * width - T(0.5);
      const T y = loc[2 * lp + 1] * height - T(0.5);
      if (!(y > T(-1) && x > T(-1) && y < height && x < width)) continue;
      const int y0 = static_cast<int>(floor(y));
      const int x0 = static_cast<int>(floor(x));
      const T ly = y - y0, lx = x - x0, hy = T(1) - ly, hx = T(1) - lx;
      const T v00 = pixel(level_value, y0, x0, height, width, row_stride);
      const T v01 = pixel(level_value, y0, x0 + 1, height, width, row_stride);
      const T v10 = pixel(level_value, y0 + 1, x0, height, width, row_stride);
      const T v11 = pixel(level_value, y0 + 1, x0 + 1, height, width, row_stride);
      const T sample = hy * hx * v00 + hy * lx * v01 + ly * hx * v10 + ly * lx * v11;
      const T w = weight[lp];
      const T gw = g * w;
      atomicAdd(grad_weight + lp, g * sample);
      scatter(level_grad, y0, x0, height, width, row_stride, gw * hy * hx);
      scatter(level_grad, y0, x0 + 1, height, width, row_stride, gw * hy * lx);
      scatter(level_grad, y0 + 1, x0, height, width, row_stride, gw * ly * hx);
      scatter(level_grad, y0 + 1, x0 + 1, height, width, row_stride, gw * ly * lx);
      // d(sample)/dx and d(sample)/dy in pixels, times d(pixel)/d(loc) = size
      const T dx = hy * (v01 - v00) + ly * (v11 - v10);
      const T dy = hx * (v10 - v00) + lx * (v11 - v01);
      atomicAdd(grad_loc + 2 * lp, gw * dx * width);
      atomicAdd(grad_loc + 2 * lp + 1, gw * dy * height);
    }
  }
}

struct Dims {
  int64_t batch;
  int spatial, heads, channels, levels, points, queries;
};

Dims dims_of(const at::Tensor& value, const at::Tensor& sampling_loc) {
  return {value.size(0),
          static_cast<int>(value.size(1)),
          static_cast<int>(value.size(2)),
          static_cast<int>(value.size(3)),
          static_cast<int>(sampling_loc.size(3)),
          static_cast<int>(sampling_loc.size(4)),
          static_cast<int>(sampling_loc.size(1))};
}

}  // namespace

at::Tensor msda_cuda_forward(const at::Tensor& value, const at::Tensor& spatial_shapes,
                             const at::Tensor& level_start_index, const at::Tensor& sampling_loc,
                             const at::Tensor& attn_weight, int64_t im2col_step) {
  const c10::cuda::CUDAGuard guard(value.device());
  const Dims d = dims_of(value, sampling_loc);
  TORCH_CHECK(im2col_step > 0, "im2col_step must be positive");
  auto out = at::zeros({d.batch, d.queries, static_cast<int64_t>(d.heads) * d.channels}, value.options());
  const int64_t per_sample = static_cast<int64_t>(d.queries) * d.heads * d.channels;
  const auto stream = at::cuda::getCurrentCUDAStream();
  // process the batch in chunks of `im2col_step` samples, like the reference op
  for (int64_t first = 0; first < d.batch; first += im2col_step) {
    const int64_t count = std::min(im2col_step, d.batch - first);
    const int64_t total = count * per_sample;
    AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "msda_cuda_forward", [&] {
      msda_forward_kernel<scalar_t><<<blocks_for(total), kThreads, 0, stream>>>(
          total, value.data_ptr<scalar_t>() + first * value.stride(0), spatial_shapes.data_ptr<int64_t>(),
          level_start_index.data_ptr<int64_t>(), sampling_loc.data_ptr<scalar_t>() + first * sampling_loc.stride(0),
          attn_weight.data_ptr<scalar_t>() + first * attn_weight.stride(0), out.data_ptr<scalar_t>() + first * per_sample,
          d.spatial, d.heads, d.channels, d.levels, d.points, d.queries);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return out;
}

std::vector<at::Tensor> msda_cuda_backward(const at::Tensor& value, const at::Tensor& spatial_shapes,
                                           const at::Tensor& level_start_index, const at::Tensor& sampling_loc,
                                           const at::Tensor& attn_weight, const at::Tensor& grad_output,
                                           int64_t im2col_step) {
  const c10::cuda::CUDAGuard guard(value.device());
  const Dims d = dims_of(value, sampling_loc);
  TORCH_CHECK(im2col_step > 0, "im2col_step must be positive");
  auto grad_value = at::zeros_like(value);
  auto grad_loc = at::zeros_like(sampling_loc);
  auto grad_weight = at::zeros_like(attn_weight);
  const int64_t per_sample = static_cast<int64_t>(d.queries) * d.heads * d.channels;
  const auto stream = at::cuda::getCurrentCUDAStream();
  for (int64_t first = 0; first < d.batch; first += im2col_step) {
    const int64_t count = std::min(im2col_step, d.batch - first);
    const int64_t total = count * per_sample;
    AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "msda_cuda_backward", [&] {
      msda_backward_kernel<scalar_t><<<blocks_for(total), kThreads, 0, stream>>>(
          total, value.data_ptr<scalar_t>() + first * value.stride(0), spatial_shapes.data_ptr<int64_t>(),
          level_start_index.data_ptr<int64_t>(), sampling_loc.data_ptr<scalar_t>() + first * sampling_loc.stride(0),
          attn_weight.data_ptr<scalar_t>() + first * attn_weight.stride(0),
          grad_output.data_ptr<scalar_t>() + first * per_sample, grad_value.data_ptr<scalar_t>() + first * value.stride(0),
          grad_loc.data_ptr<scalar_t>() + first * sampling_loc.stride(0),
          grad_weight.data_ptr<scalar_t>() + first * attn_weight.stride(0), d.spatial, d.heads, d.channels, d.levels,
          d.points, d.queries);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {grad_value, grad_loc, grad_weight};
}
