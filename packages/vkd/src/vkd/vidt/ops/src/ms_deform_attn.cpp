// Python bindings of the multi-scale deformable attention op (CUDA only; the CPU uses the PyTorch path).
// Written for kd-repro's VkD package; same entry points and argument order as Deformable-DETR's op.

#include <torch/extension.h>

#include <vector>

at::Tensor msda_cuda_forward(const at::Tensor& value, const at::Tensor& spatial_shapes,
                             const at::Tensor& level_start_index, const at::Tensor& sampling_loc,
                             const at::Tensor& attn_weight, int64_t im2col_step);

std::vector<at::Tensor> msda_cuda_backward(const at::Tensor& value, const at::Tensor& spatial_shapes,
                                           const at::Tensor& level_start_index, const at::Tensor& sampling_loc,
                                           const at::Tensor& attn_weight, const at::Tensor& grad_output,
                                           int64_t im2col_step);

namespace {

void check_inputs(const at::Tensor& value, const at::Tensor& spatial_shapes, const at::Tensor& level_start_index,
                  const at::Tensor& sampling_loc, const at::Tensor& attn_weight) {
  for (const at::Tensor* t : {&value, &spatial_shapes, &level_start_index, &sampling_loc, &attn_weight}) {
    TORCH_CHECK(t->is_cuda(), "MultiScaleDeformableAttention: every input must be a CUDA tensor");
    TORCH_CHECK(t->is_contiguous(), "MultiScaleDeformableAttention: every input must be contiguous");
  }
  TORCH_CHECK(value.dim() == 4, "value must be (N, S, M, D)");
  TORCH_CHECK(sampling_loc.dim() == 6 && sampling_loc.size(5) == 2, "sampling_loc must be (N, Lq, M, L, P, 2)");
  TORCH_CHECK(attn_weight.dim() == 5, "attn_weight must be (N, Lq, M, L, P)");
  TORCH_CHECK(spatial_shapes.scalar_type() == at::kLong && level_start_index.scalar_type() == at::kLong,
              "spatial_shapes and level_start_index must be int64");
  TORCH_CHECK(sampling_loc.scalar_type() == value.scalar_type() && attn_weight.scalar_type() == value.scalar_type(),
              "value, sampling_loc and attn_weight must share one dtype");
}

at::Tensor forward(const at::Tensor& value, const at::Tensor& spatial_shapes, const at::Tensor& level_start_index,
                   const at::Tensor& sampling_loc, const at::Tensor& attn_weight, int64_t im2col_step) {
  check_inputs(value, spatial_shapes, level_start_index, sampling_loc, attn_weight);
  return msda_cuda_forward(value, spatial_shapes, level_start_index, sampling_loc, attn_weight, im2col_step);
}

std::vector<at::Tensor> backward(const at::Tensor& value, const at::Tensor& spatial_shapes,
                                 const at::Tensor& level_start_index, const at::Tensor& sampling_loc,
                                 const at::Tensor& attn_weight, const at::Tensor& grad_output, int64_t im2col_step) {
  check_inputs(value, spatial_shapes, level_start_index, sampling_loc, attn_weight);
  TORCH_CHECK(grad_output.is_cuda() && grad_output.is_contiguous(), "grad_output must be a contiguous CUDA tensor");
  return msda_cuda_backward(value, spatial_shapes, level_start_index, sampling_loc, attn_weight, grad_output,
                            im2col_step);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("ms_deform_attn_forward", &forward, "multi-scale deformable attention forward (CUDA)");
  m.def("ms_deform_attn_backward", &backward, "multi-scale deformable attention backward (CUDA)");
}
