"""Procedural fundus-like images with known keypoints: vessel trees grown from an optic disc, labelled at their forks.

Each image is drawn from one seed: a field-of-view disc with radial shading and a low-frequency texture, an optic
disc and a darker fovea, 4–6 vessel trees that bifurcate up to three times (the bifurcations are the keypoints, as
the human labels of `Our_data` mark vessel bifurcations and crossings), a random global affine of the retina inside
the fixed field of view, and photometric variation (gain, gamma, colour balance, illumination ramp, blur, noise).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

SUPERSAMPLE = 2  # vessels are drawn at twice the resolution, then area-downsampled (anti-aliased thin vessels)
FOV_RADIUS = 0.46  # field-of-view radius as a fraction of the image size
MAX_DEPTH = 3  # bifurcation levels below each trunk
STEPS_PER_BRANCH = 8


@dataclass(frozen=True)
class Fundus:
    """An RGB uint8 image and its keypoints: (x, y) pixel coordinates of the vessel bifurcations inside the FOV."""

    image: np.ndarray
    keypoints: np.ndarray


@dataclass
class VesselTree:
    """Polylines (canonical frame, pixels) with their widths, and the fork points where branches split."""

    branches: list[tuple[np.ndarray, float]] = field(default_factory=list)
    forks: list[np.ndarray] = field(default_factory=list)


def grow_branch(
    tree: VesselTree,
    start: np.ndarray,
    *,
    heading: float,
    width: float,
    depth: int,
    size: int,
    rng: np.random.Generator,
) -> None:
    """Grow one meandering branch from `start`; at its end fork into two thinner children until `MAX_DEPTH`."""
    length = rng.uniform(0.14, 0.24) * size * 0.8**depth
    points = [start]
    for _ in range(STEPS_PER_BRANCH):
        heading += rng.normal(0.0, 0.12)
        points.append(points[-1] + length / STEPS_PER_BRANCH * np.array([np.cos(heading), np.sin(heading)]))
    tree.branches.append((np.array(points), width))
    if depth == MAX_DEPTH:
        return
    end = points[-1]
    tree.forks.append(end)
    spread = rng.uniform(0.35, 0.75)
    skew = rng.normal(0.0, 0.15)
    for sign in (-1.0, 1.0):
        child_width = width * rng.uniform(0.65, 0.85)
        child_heading = heading + sign * spread + skew
        grow_branch(tree, end, heading=child_heading, width=child_width, depth=depth + 1, size=size, rng=rng)


def vessel_tree(disc: np.ndarray, size: int, rng: np.random.Generator) -> VesselTree:
    """4–6 trunks leaving the optic disc at spread-out angles, each grown into a bifurcating tree."""
    tree = VesselTree()
    n_trunks = int(rng.integers(4, 7))
    angles = np.linspace(0, 2 * np.pi, n_trunks, endpoint=False) + rng.uniform(0, 2 * np.pi)
    for angle in angles:
        trunk_width = size / 110 * rng.uniform(0.8, 1.2)
        heading = angle + rng.normal(0, 0.2)
        grow_branch(tree, disc.copy(), heading=heading, width=trunk_width, depth=0, size=size, rng=rng)
    return tree


def random_affine(size: int, rng: np.random.Generator) -> np.ndarray:
    """2×3 matrix: rotation ±20° and scale 0.9–1.1 about the centre, then a shift of up to 4% of the size."""
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-20, 20), rng.uniform(0.9, 1.1))
    matrix[:, 2] += rng.uniform(-0.04, 0.04, 2) * size
    return matrix


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map n×2 points by a 2×3 affine matrix."""
    return points @ matrix[:, :2].T + matrix[:, 2]


def blob(size: int, centre: np.ndarray, radius: float) -> np.ndarray:
    """size×size Gaussian bump (peak 1) at `centre` with standard deviation `radius`."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * radius**2))


def vessel_mask(tree: VesselTree, matrix: np.ndarray, size: int) -> np.ndarray:
    """Float mask in [0, 1] of the vessels mapped by `matrix`, drawn supersampled and area-downsampled."""
    big = np.zeros((size * SUPERSAMPLE, size * SUPERSAMPLE), np.uint8)
    for points, width in tree.branches:
        mapped = apply_affine(matrix, points) * SUPERSAMPLE
        thickness = max(1, round(width * SUPERSAMPLE))
        cv2.polylines(big, [np.round(mapped).astype(np.int32)], False, 255, thickness, cv2.LINE_AA)
    return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def background(size: int, rng: np.random.Generator) -> np.ndarray:
    """size×size×3 float retina colour with radial shading and a smooth blotchy texture."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    r2 = ((xs - size / 2) ** 2 + (ys - size / 2) ** 2) / (FOV_RADIUS * size) ** 2
    colour = np.array([0.78, 0.36, 0.14]) * rng.uniform(0.85, 1.15, 3)
    texture = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), size / 24)
    texture /= np.abs(texture).max() + 1e-6
    shade = (1 - 0.4 * r2) * (1 + 0.08 * texture)
    return shade[..., None] * colour[None, None].astype(np.float32)


def photometric(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Gain, gamma, an illumination ramp in a random direction, a slight blur and sensor noise."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    direction = rng.uniform(0, 2 * np.pi)
    ramp = 1 + rng.uniform(0.0, 0.3) * (np.cos(direction) * xs + np.sin(direction) * ys)
    image = np.clip(image * ramp[..., None] * rng.uniform(0.8, 1.2), 0, 1) ** rng.uniform(0.8, 1.25)
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 0.9))
    return image + rng.normal(0, rng.uniform(0.005, 0.02), image.shape).astype(np.float32)


def draw_fundus(size: int = 256, seed: int = 0) -> Fundus:
    """Draw one fundus-like RGB image of `size`×`size` pixels and its bifurcation keypoints."""
    rng = np.random.default_rng(seed)
    side = rng.choice([-1.0, 1.0])
    disc = np.array([size / 2 + side * 0.2 * size, size / 2 + rng.uniform(-0.06, 0.06) * size])
    fovea = np.array([size / 2 - side * 0.1 * size, size / 2 + rng.uniform(-0.04, 0.04) * size])
    tree = vessel_tree(disc, size, rng)
    matrix = random_affine(size, rng)
    disc, fovea = apply_affine(matrix, np.stack([disc, fovea]))

    image = background(size, rng)
    image += blob(size, disc, 0.045 * size)[..., None] * np.array([0.25, 0.45, 0.35], np.float32)
    image *= 1 - 0.35 * blob(size, fovea, 0.05 * size)[..., None]
    darkness = np.array([0.25, 0.6, 0.5], np.float32) * rng.uniform(0.8, 1.1)
    image *= 1 - vessel_mask(tree, matrix, size)[..., None] * darkness
    image = photometric(image, size, rng)

    ys, xs = np.mgrid[0:size, 0:size]
    radius = FOV_RADIUS * size
    outside = (xs - size / 2) ** 2 + (ys - size / 2) ** 2 > radius**2
    image[outside] = 0.02
    keypoints = apply_affine(matrix, np.array(tree.forks)).reshape(-1, 2)
    inside = np.hypot(*(keypoints - size / 2).T) < radius - 4
    return Fundus(np.clip(image * 255, 0, 255).astype(np.uint8), keypoints[inside])


def fundus_rgb(size: int, seed: int) -> np.ndarray:
    """Only the image of `draw_fundus(size, seed)` (the `draw` callback of `write_fake_fire`)."""
    return draw_fundus(size, seed).image
