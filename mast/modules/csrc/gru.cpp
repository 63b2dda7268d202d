// Packed GRU recurrence for the CPU: one C++ call per unroll (forward) and per backward.
//
// Why: on a CPU the Python loop of mast.modules.agents._gru_forward issues 6 ATen ops per step
// (and the backward 3–4), each a separate pass over a [rows, h] block plus dispatch overhead,
// and torch's float tanh is ~3× its sigmoid here. This file keeps the one matmul per step
// (h_{t-1} W_hhᵀ, ATen/MKL) and fuses everything elementwise of a step into one loop.
// The maths is the Python path's: gate order (r, z, n) as torch's GRUCell,
//   r = σ(gi_r + gh_r), z = σ(gi_z + gh_z), n = tanh(gi_n + r·gh_n), h' = n + z·(h − n),
// with gh = h W_hhᵀ + b_hh; packed layout: the rows alive at step k are the first sizes[k]
// rows of step k−1 (PackedSequence's layout, see agents.Packing).
#include <torch/extension.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace {

// exp on floats that GCC vectorises (no libm call): Cody–Waite reduction by ln 2 and the
// classic degree-6 minimax polynomial for e^r on |r| ≤ ln2/2 (≈1 ulp), input clamped to the
// range where 2^n is a normal float.
inline float exp_f(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return p * __builtin_bit_cast(float, bits);  // 2^n; memcpy here blocks GCC's vectoriser
}

inline double exp_f(double x) { return std::exp(x); }  // float64: gradcheck, exact reference

template <typename T> inline T sigmoid(T x) { return T(1) / (T(1) + exp_f(-x)); }
template <typename T> inline T tanh_(T x) { return T(1) - T(2) / (T(1) + exp_f(T(2) * x)); }

std::vector<int64_t> offsets_of(const std::vector<int64_t>& sizes) {
  std::vector<int64_t> off(sizes.size() + 1, 0);
  for (size_t k = 0; k < sizes.size(); ++k) off[k + 1] = off[k] + sizes[k];
  return off;
}

template <typename T, bool kSave>
void forward_kernel(const at::Tensor& gi, const at::Tensor& w_hh, const at::Tensor& b_hh,
                    const std::vector<int64_t>& sizes, at::Tensor& hs, at::Tensor* rz,
                    at::Tensor* nt, at::Tensor* ghn) {
  const int64_t h = hs.size(1), h3 = 3 * h;
  const auto off = offsets_of(sizes);
  at::Tensor gh = at::zeros({sizes[0], h3}, gi.options());  // step 0: h_{-1} = 0, gh = b_hh
  const at::Tensor w_t = w_hh.t();
  const T* gi_p = gi.data_ptr<T>();
  const T* b = b_hh.data_ptr<T>();
  T* hs_p = hs.data_ptr<T>();
  T* rz_p = kSave ? rz->data_ptr<T>() : nullptr;
  T* n_p = kSave ? nt->data_ptr<T>() : nullptr;
  T* ghn_p = kSave ? ghn->data_ptr<T>() : nullptr;
  std::vector<T> zero(h, T(0));
  for (size_t k = 0; k < sizes.size(); ++k) {
    const int64_t rows = sizes[k], o = off[k];
    if (k) {
      at::Tensor gh_k = gh.narrow(0, 0, rows);
      at::mm_out(gh_k, hs.narrow(0, off[k - 1], rows), w_t);
    }
    const T* gh_p = gh.data_ptr<T>();
    for (int64_t i = 0; i < rows; ++i) {
      const T* g = gi_p + (o + i) * h3;
      const T* q = gh_p + i * h3;
      const T* hp = k ? hs_p + (off[k - 1] + i) * h : zero.data();
      T* out = hs_p + (o + i) * h;
      T* rz_i = kSave ? rz_p + (o + i) * 2 * h : nullptr;
      T* n_i = kSave ? n_p + (o + i) * h : nullptr;
      T* ghn_i = kSave ? ghn_p + (o + i) * h : nullptr;
#pragma omp simd
      for (int64_t j = 0; j < h; ++j) {
        const T r = sigmoid(g[j] + q[j] + b[j]);
        const T z = sigmoid(g[h + j] + q[h + j] + b[h + j]);
        const T hn = q[2 * h + j] + b[2 * h + j];
        const T n = tanh_(g[2 * h + j] + r * hn);
        out[j] = n + z * (hp[j] - n);
        if constexpr (kSave) {
          rz_i[j] = r;
          rz_i[h + j] = z;
          n_i[j] = n;
          ghn_i[j] = hn;
        }
      }
    }
  }
}

template <typename T>
void backward_kernel(const at::Tensor& d_hs, const at::Tensor& hs, const at::Tensor& rz,
                     const at::Tensor& nt, const at::Tensor& ghn, const at::Tensor& w_hh,
                     const std::vector<int64_t>& sizes, at::Tensor& d_gh, at::Tensor& d_gin,
                     at::Tensor& h_prev) {
  const int64_t h = hs.size(1), h3 = 3 * h;
  const auto off = offsets_of(sizes);
  at::Tensor carry = at::zeros({sizes[0], h}, hs.options());  // ∂L/∂h_t from step t+1
  const T *dh_p = d_hs.data_ptr<T>(), *hs_p = hs.data_ptr<T>(), *rz_p = rz.data_ptr<T>();
  const T *n_p = nt.data_ptr<T>(), *ghn_p = ghn.data_ptr<T>();
  T *dgh_p = d_gh.data_ptr<T>(), *dgin_p = d_gin.data_ptr<T>(), *hp_p = h_prev.data_ptr<T>();
  T* c_p = carry.data_ptr<T>();
  std::vector<T> zero(h, T(0));
  for (int64_t k = static_cast<int64_t>(sizes.size()) - 1; k >= 0; --k) {
    const int64_t rows = sizes[k], o = off[k];
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t p = o + i;
      const T* hp = k ? hs_p + (off[k - 1] + i) * h : zero.data();
      const T *dh = dh_p + p * h, *rz_i = rz_p + p * 2 * h, *n_i = n_p + p * h;
      const T* ghn_i = ghn_p + p * h;
      T *c = c_p + i * h, *dg = dgh_p + p * h3, *dgin = dgin_p + p * h, *hpo = hp_p + p * h;
#pragma omp simd
      for (int64_t j = 0; j < h; ++j) {
        const T g = dh[j] + c[j];  // total ∂L/∂h_t
        const T r = rz_i[j], z = rz_i[h + j], n = n_i[j];
        const T a = (T(1) - z) * (T(1) - n * n);  // ∂h'/∂(n pre-activation)
        const T cn = a * r;                        // ∂h'/∂gh_n
        dg[j] = g * cn * ghn_i[j] * (T(1) - r);    // ∂L/∂(r pre-activation)
        dg[h + j] = g * (hp[j] - n) * z * (T(1) - z);
        dg[2 * h + j] = g * cn;
        dgin[j] = g * a;
        c[j] = g * z;  // the direct path h_{t-1} → h_t; the W_hh path is added below
        hpo[j] = hp[j];
      }
    }
    if (k) {
      const int64_t before = sizes[k - 1];
      if (before > rows) carry.narrow(0, rows, before - rows).zero_();
      carry.narrow(0, 0, rows).addmm_(d_gh.narrow(0, o, rows), w_hh);
    }
  }
}

at::Tensor forward(const at::Tensor& gi, const at::Tensor& w_hh, const at::Tensor& b_hh,
                   const std::vector<int64_t>& sizes) {
  at::Tensor hs = at::empty({gi.size(0), gi.size(1) / 3}, gi.options());
  AT_DISPATCH_FLOATING_TYPES(gi.scalar_type(), "mast_gru_forward", [&] {
    forward_kernel<scalar_t, false>(gi, w_hh, b_hh, sizes, hs, nullptr, nullptr, nullptr);
  });
  return hs;
}

// → (hs [P, h], rz [P, 2h] sigmoid r|z, n [P, h], gh_n [P, h] = (h W_hhᵀ + b_hh)_n): what the
// backward needs.
std::vector<at::Tensor> forward_saving(const at::Tensor& gi, const at::Tensor& w_hh,
                                       const at::Tensor& b_hh, const std::vector<int64_t>& sizes) {
  const int64_t h = gi.size(1) / 3;
  at::Tensor hs = at::empty({gi.size(0), h}, gi.options());
  at::Tensor rz = at::empty({gi.size(0), 2 * h}, gi.options());
  at::Tensor nt = at::empty_like(hs), ghn = at::empty_like(hs);
  AT_DISPATCH_FLOATING_TYPES(gi.scalar_type(), "mast_gru_forward", [&] {
    forward_kernel<scalar_t, true>(gi, w_hh, b_hh, sizes, hs, &rz, &nt, &ghn);
  });
  return {hs, rz, nt, ghn};
}

// → (∂L/∂gi [P, 3h], ∂L/∂W_hh [3h, h], ∂L/∂b_hh [3h]); gradients are dense (also at weights a
// mask zeroes) so RigL grows from them.
std::vector<at::Tensor> backward(const at::Tensor& d_hs, const at::Tensor& hs, const at::Tensor& rz,
                                 const at::Tensor& nt, const at::Tensor& ghn,
                                 const at::Tensor& w_hh, const std::vector<int64_t>& sizes) {
  const int64_t h = hs.size(1);
  at::Tensor d_gh = at::empty({hs.size(0), 3 * h}, hs.options());
  at::Tensor d_gin = at::empty_like(hs), h_prev = at::empty_like(hs);
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "mast_gru_backward", [&] {
    backward_kernel<scalar_t>(d_hs, hs, rz, nt, ghn, w_hh, sizes, d_gh, d_gin, h_prev);
  });
  at::Tensor d_w = d_gh.t().mm(h_prev), d_b = d_gh.sum(0);
  d_gh.narrow(1, 2 * h, h).copy_(d_gin);  // ∂L/∂gi: the r, z columns equal ∂L/∂gh's
  return {d_gh, d_w, d_b};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "packed GRU forward, hidden states only");
  m.def("forward_saving", &forward_saving, "packed GRU forward, saving what backward needs");
  m.def("backward", &backward, "packed GRU backward through time");
}
