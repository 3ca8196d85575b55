"""Element loops (numba): co-rotated linear elasticity and compressible neo-Hookean, assembled in one pass.

Both element stiffness matrices have the structure
``K_ab = V [lam h_a h_b^T + mu h_b h_a^T + c (g_a . g_b) I]`` (with rotated or pulled-back gradients
``h``), so no (M, 12, 12) element matrices are stored: the kernels compute each entry and add it
straight into the CSR data at the slot given by the pattern.

Units: mm, N, MPa.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numpy.typing import NDArray


@nb.njit(cache=True, inline="always")
def _det3(a: NDArray) -> float:
    return (a[0, 0] * (a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1]) - a[0, 1] * (a[1, 0] * a[2, 2] - a[1, 2] * a[2, 0])
            + a[0, 2] * (a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0]))


@nb.njit(cache=True, inline="always")
def _inv_transpose3(a: NDArray, out: NDArray) -> float:
    """Write a^-T into out; return det(a)."""
    det = _det3(a)
    inv = 1.0 / det
    out[0, 0] = (a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1]) * inv
    out[0, 1] = (a[1, 2] * a[2, 0] - a[1, 0] * a[2, 2]) * inv
    out[0, 2] = (a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0]) * inv
    out[1, 0] = (a[0, 2] * a[2, 1] - a[0, 1] * a[2, 2]) * inv
    out[1, 1] = (a[0, 0] * a[2, 2] - a[0, 2] * a[2, 0]) * inv
    out[1, 2] = (a[0, 1] * a[2, 0] - a[0, 0] * a[2, 1]) * inv
    out[2, 0] = (a[0, 1] * a[1, 2] - a[0, 2] * a[1, 1]) * inv
    out[2, 1] = (a[0, 2] * a[1, 0] - a[0, 0] * a[1, 2]) * inv
    out[2, 2] = (a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]) * inv
    return det


@nb.njit(cache=True)
def polar_rotation(f: NDArray, r: NDArray, tmp: NDArray) -> bool:
    """Rotation factor of F = R U (Newton iteration R <- (R + R^-T)/2); False when det F <= 0."""
    if _det3(f) <= 0.0:
        return False
    r[:, :] = f
    for _ in range(30):
        _inv_transpose3(r, tmp)
        change = 0.0
        for i in range(3):
            for j in range(3):
                new = 0.5 * (r[i, j] + tmp[i, j])
                change = max(change, abs(new - r[i, j]))
                r[i, j] = new
        if change < 1e-6:  # quadratic convergence: the error of the updated iterate is ~change^2 (1e-12)
            break
    return True


@nb.njit(cache=True)
def _deformation_gradient(x: NDArray, tet: NDArray, g: NDArray, f: NDArray) -> None:
    for i in range(3):
        for j in range(3):
            acc = 0.0
            for a in range(4):
                acc += x[tet[a], i] * g[a, j]
            f[i, j] = acc


@nb.njit(cache=True)
def _scatter_block_matrix(positions: NDArray, e: int, h: NDArray, g: NDArray, vol: float, lam: float,
                          c_mix: float, c_iso: float, coef: float, data: NDArray) -> None:
    """Add coef * V [lam h_a h_b^T + c_mix h_b h_a^T + c_iso (g_a.g_b) I] to the CSR data."""
    s = coef * vol
    for a in range(4):
        for b in range(4):
            gab = g[a, 0] * g[b, 0] + g[a, 1] * g[b, 1] + g[a, 2] * g[b, 2]
            for i in range(3):
                for k in range(3):
                    p = positions[e, 3 * a + i, 3 * b + k]
                    if p >= 0:
                        val = lam * h[a, i] * h[b, k] + c_mix * h[b, i] * h[a, k]
                        if i == k:
                            val += c_iso * gab
                        data[p] += s * val


@nb.njit(cache=True)
def corotated_assemble(x: NDArray, tets: NDArray, grads: NDArray, vol: NDArray, lam: NDArray, mu: NDArray,
                       positions: NDArray, coef: float, data: NDArray, rot: NDArray, update_rotations: bool,
                       want_matrix: bool) -> NDArray:
    """Co-rotational internal force (3N,) at current positions ``x`` (N, 3), optionally adding coef*K_R to data.

    ``rot`` (M, 3, 3) holds the element rotations: recomputed from x when ``update_rotations`` (an
    inverted element keeps its previous rotation), else used as given (frozen, e.g. identity for
    small-strain linear elasticity). The force is ``R K (R^T x - X)`` and the matrix ``R K R^T``.
    """
    n = x.shape[0]
    fint = np.zeros(3 * n)
    f = np.empty((3, 3))
    r = np.empty((3, 3))
    h = np.empty((4, 3))
    eps = np.empty((3, 3))
    sig = np.empty((3, 3))
    for e in range(tets.shape[0]):
        tet = tets[e]
        g = grads[e]
        _deformation_gradient(x, tet, g, f)
        if update_rotations:
            if polar_rotation(f, r, sig):
                rot[e] = r
            else:
                r[:, :] = rot[e]
        else:
            r[:, :] = rot[e]
        # small strain in the rotated frame: sym(R^T F) - I
        for i in range(3):
            for j in range(3):
                acc = 0.0
                for k in range(3):
                    acc += r[k, i] * f[k, j]
                eps[i, j] = acc
        tr = eps[0, 0] + eps[1, 1] + eps[2, 2] - 3.0
        for i in range(3):
            for j in range(3):
                sym = 0.5 * (eps[i, j] + eps[j, i]) - (1.0 if i == j else 0.0)
                sig[i, j] = 2.0 * mu[e] * sym + (lam[e] * tr if i == j else 0.0)
        for a in range(4):
            for i in range(3):
                h[a, i] = r[i, 0] * g[a, 0] + r[i, 1] * g[a, 1] + r[i, 2] * g[a, 2]
        # f_a = V R sig g_a
        for a in range(4):
            for i in range(3):
                acc = 0.0
                for k in range(3):
                    acc += r[i, k] * (sig[k, 0] * g[a, 0] + sig[k, 1] * g[a, 1] + sig[k, 2] * g[a, 2])
                fint[3 * tet[a] + i] += vol[e] * acc
        if want_matrix:
            _scatter_block_matrix(positions, e, h, g, vol[e], lam[e], mu[e], mu[e], coef, data)
    return fint


@nb.njit(cache=True)
def neo_hookean_assemble(x: NDArray, tets: NDArray, grads: NDArray, vol: NDArray, lam: NDArray, mu: NDArray,
                         positions: NDArray, data: NDArray, want_matrix: bool) -> tuple:
    """Compressible neo-Hookean internal force (3N,), strain energy (N mm) and, optionally, the tangent.

    W = mu/2 (tr C - 3) - mu ln J + lam/2 (ln J)^2. Returns (fint, energy, n_inverted); with inverted
    elements (J <= 0) the energy is +inf and nothing is assembled for them.
    """
    n = x.shape[0]
    fint = np.zeros(3 * n)
    f = np.empty((3, 3))
    fit = np.empty((3, 3))
    h = np.empty((4, 3))
    energy = 0.0
    n_inverted = 0
    for e in range(tets.shape[0]):
        tet = tets[e]
        g = grads[e]
        _deformation_gradient(x, tet, g, f)
        det = _det3(f)
        if det <= 0.0:
            n_inverted += 1
            continue
        _inv_transpose3(f, fit)
        lnj = np.log(det)
        trc = 0.0
        for i in range(3):
            for j in range(3):
                trc += f[i, j] * f[i, j]
        energy += vol[e] * (0.5 * mu[e] * (trc - 3.0) - mu[e] * lnj + 0.5 * lam[e] * lnj * lnj)
        for a in range(4):
            for i in range(3):
                h[a, i] = fit[i, 0] * g[a, 0] + fit[i, 1] * g[a, 1] + fit[i, 2] * g[a, 2]
        c = lam[e] * lnj - mu[e]
        for a in range(4):
            for i in range(3):
                fg = f[i, 0] * g[a, 0] + f[i, 1] * g[a, 1] + f[i, 2] * g[a, 2]
                fint[3 * tet[a] + i] += vol[e] * (mu[e] * fg + c * h[a, i])
        if want_matrix:
            _scatter_block_matrix(positions, e, h, g, vol[e], lam[e], mu[e] - lam[e] * lnj, mu[e], 1.0, data)
    if n_inverted:
        energy = np.inf
    return fint, energy, n_inverted


@nb.njit(cache=True, fastmath=True, error_model="numpy")
def _warm_rotation(f: NDArray, r: NDArray) -> None:
    """Rotation maximising tr(R^T F), iterated from the previous R in place (Mueller et al. 2016).

    Converges in one to three iterations when R changed little since the last call; for det F > 0 the
    fixed point is the polar rotation, and an inverted element still yields a proper rotation.
    """
    for _ in range(12):
        ox = oy = oz = 0.0
        dot = 0.0
        for c in range(3):
            ox += r[1, c] * f[2, c] - r[2, c] * f[1, c]
            oy += r[2, c] * f[0, c] - r[0, c] * f[2, c]
            oz += r[0, c] * f[1, c] - r[1, c] * f[0, c]
            dot += r[0, c] * f[0, c] + r[1, c] * f[1, c] + r[2, c] * f[2, c]
        scale = 1.0 / (abs(dot) + 1e-30)
        ox *= scale
        oy *= scale
        oz *= scale
        w = np.sqrt(ox * ox + oy * oy + oz * oz)
        if w < 1e-6:  # radians: moves a node of a 100 mm organ by 1e-4 mm
            break
        kx, ky, kz = ox / w, oy / w, oz / w
        s, c1 = np.sin(w), 1.0 - np.cos(w)
        q00, q01, q02 = 1 - c1 * (ky * ky + kz * kz), -s * kz + c1 * kx * ky, s * ky + c1 * kx * kz
        q10, q11, q12 = s * kz + c1 * kx * ky, 1 - c1 * (kx * kx + kz * kz), -s * kx + c1 * ky * kz
        q20, q21, q22 = -s * ky + c1 * kx * kz, s * kx + c1 * ky * kz, 1 - c1 * (kx * kx + ky * ky)
        for c in range(3):
            a0, a1, a2 = r[0, c], r[1, c], r[2, c]
            r[0, c] = q00 * a0 + q01 * a1 + q02 * a2
            r[1, c] = q10 * a0 + q11 * a1 + q12 * a2
            r[2, c] = q20 * a0 + q21 * a1 + q22 * a2


@nb.njit(cache=True, fastmath=True, error_model="numpy")
def corotated_force_and_gradients(x: NDArray, tets: NDArray, grads: NDArray, vol: NDArray, lam: NDArray,
                                  mu: NDArray, rot: NDArray, rotated_grads: NDArray) -> NDArray:
    """Update rotations (warm-started), store rotated gradients R g_a (M, 4, 3), return f_int (3N)."""
    n = x.shape[0]
    fint = np.zeros(3 * n)
    f = np.empty((3, 3))
    sig = np.empty((3, 3))
    rnew = np.empty((3, 3))
    for e in range(tets.shape[0]):
        tet = tets[e]
        g = grads[e]
        r = rot[e]
        _deformation_gradient(x, tet, g, f)
        if not polar_rotation(f, rnew, sig):
            _warm_rotation(f, r)  # inverted element: keep a proper rotation close to the last one
        else:
            r[:, :] = rnew
        tr = -3.0
        for i in range(3):
            tr += r[0, i] * f[0, i] + r[1, i] * f[1, i] + r[2, i] * f[2, i]
        for i in range(3):
            for j in range(i, 3):
                a = 0.0
                b = 0.0
                for k in range(3):
                    a += r[k, i] * f[k, j]
                    b += r[k, j] * f[k, i]
                val = mu[e] * (a + b)
                if i == j:
                    val += lam[e] * tr - 2.0 * mu[e]
                sig[i, j] = val
                sig[j, i] = val
        for a in range(4):
            for i in range(3):
                rotated_grads[e, a, i] = r[i, 0] * g[a, 0] + r[i, 1] * g[a, 1] + r[i, 2] * g[a, 2]
            for i in range(3):
                acc = 0.0
                for k in range(3):
                    acc += r[i, k] * (sig[k, 0] * g[a, 0] + sig[k, 1] * g[a, 1] + sig[k, 2] * g[a, 2])
                fint[3 * tet[a] + i] += vol[e] * acc
    return fint


@nb.njit(cache=True, fastmath=True, error_model="numpy")
def corotated_matvec(tets: NDArray, rotated_grads: NDArray, vol: NDArray, lam: NDArray, mu: NDArray,
                     d: NDArray, elements: NDArray) -> NDArray:
    """K_R d (3N,) without a matrix: per element V sigma(G) h_a with G = sum_b d_b (x) h_b.

    ``d`` is (3N,); only the listed ``elements`` are visited (all of them, or those touching some nodes).
    """
    out = np.zeros(d.shape[0])
    gm = np.empty((3, 3))
    for idx in range(elements.shape[0]):
        e = elements[idx]
        tet = tets[e]
        h = rotated_grads[e]
        for i in range(3):
            for j in range(3):
                acc = 0.0
                for b in range(4):
                    acc += d[3 * tet[b] + i] * h[b, j]
                gm[i, j] = acc
        tr = gm[0, 0] + gm[1, 1] + gm[2, 2]
        for a in range(4):
            for i in range(3):
                acc = lam[e] * tr * h[a, i]
                for j in range(3):
                    acc += mu[e] * (gm[i, j] + gm[j, i]) * h[a, j]
                out[3 * tet[a] + i] += vol[e] * acc
    return out
