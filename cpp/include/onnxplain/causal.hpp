// Multiple causal explanations (ReX / MultiReX family): the model-independent search kernels.
//
// Boxes are int32 quadruples (y0, x0, y1, x1), half-open pixel ranges [y0, y1) x [x0, x1).
// Masks follow the project convention: float32, 1 shows the image pixel, 0 takes the mask
// value. Every kernel writes each output element from one thread, so results never depend
// on `threads` (0 = all hardware threads); random draws come only from `uniform01`.
#pragma once
#include <cstdint>

namespace onnxplain {

/// Whether a box is split by `split_boxes`: both sides >= 2 and area >= min_area pixels.
bool splittable(const int32_t box[4], int64_t min_area);

/// Splits each of n boxes into 4 children at a random interior point: the row
/// y0 + 1 + floor(u * (h - 1)) and the column x0 + 1 + floor(v * (w - 1)), with
/// u = uniform01(seed, streams[i], counters[i]) and v = uniform01(seed, streams[i], counters[i] + 1).
/// children: n x 4 x 4, in the order top-left, top-right, bottom-left, bottom-right. A box
/// that is not splittable gets 4 copies of itself.
void split_boxes(uint64_t seed, const int64_t* streams, const int64_t* counters, const int32_t* boxes,
                 int64_t n, int64_t min_area, int32_t* children);

/// Masks of box unions: out[g] (height x width) is 1 inside every box b with groups[b] == g
/// and 0 elsewhere, for g < count. groups is non-decreasing (boxes grouped by mask);
/// boxes are clipped to the image.
void box_masks(const int32_t* boxes, const int64_t* groups, int64_t n_boxes, int64_t count,
               int64_t height, int64_t width, float* out, int threads);

/// Adds values[b] to every pixel of box b of the (height x width) float64 map, b in order.
void credit_boxes(const int32_t* boxes, const double* values, int64_t n_boxes, int64_t height,
                  int64_t width, double* map);

/// Responsibility of the 4 children of n refined boxes from the outcome of their 16 subsets.
/// passes: n x 16, passes[i][s] = 1 when the mutant showing the children in bit set s (bit j:
/// child j), together with the rest of the current sufficient set, satisfies the criterion.
/// Child j's responsibility is max 1 / (1 + k) over passing sets s containing j whose
/// s without j fails, with k = 4 - |s| the number of hidden siblings (the Halpern-Pearl
/// definition restricted to the siblings), 0 when no such s exists. areas: n x 4 child areas.
/// responsibility: n x 4 out. chosen: n out, the passing proper subset with the smallest
/// visible area (ties: fewer children, then the lower bit set), or 15 when none passes.
void sibling_responsibility(const uint8_t* passes, const int64_t* areas, int64_t n,
                            double* responsibility, int32_t* chosen);

/// Growth masks: out[k][p] = 1 when rank[p] < cuts[k], else 0 (rank: height x width, the
/// position of each pixel in the order of decreasing responsibility; excluded pixels hold
/// a rank >= every cut).
void rank_masks(const int32_t* rank, const int64_t* cuts, int64_t count, int64_t pixels, float* out,
                int threads);

/// Spotlight masks: out[k][p] = 1 for allowed pixels p whose centre lies within radii[k] of
/// centres[k] = (y, x) (pixel units, pixel centres at integer + 0.5), else 0.
void disc_masks(const float* centres, const float* radii, const uint8_t* allowed, int64_t count,
                int64_t height, int64_t width, float* out, int threads);

/// Spotlight centres for spotlights first .. first+count-1 (stream = spotlight index): a
/// random start (draws 0 and 1: y, x), moved `steps` times to the responsibility-weighted
/// centroid of the allowed pixels within `radius` of it (kept when they weigh nothing).
/// responsibility, allowed: height x width; out: count x 2 (y, x).
void spotlight_centres(uint64_t seed, int64_t first, int64_t count, const float* responsibility,
                       const uint8_t* allowed, int64_t height, int64_t width, float radius,
                       int64_t steps, float* out, int threads);

/// Parts of a mask for pruning: the 4-connected components of mask within each cell x cell
/// tile. labels (height x width) gets 0 outside the mask and 1..P inside, numbered in
/// row-major order of their first pixel; returns P.
int64_t mask_parts(const uint8_t* mask, int64_t height, int64_t width, int64_t cell, int32_t* labels);

/// Pruning masks: out[k][p] = 1 when labels[p] > 0 and drop[k][labels[p]] == 0. drop:
/// count x (parts + 1) uint8 (column 0 unused).
void drop_masks(const int32_t* labels, const uint8_t* drop, int64_t count, int64_t parts, int64_t pixels,
                float* out, int threads);

}  // namespace onnxplain
