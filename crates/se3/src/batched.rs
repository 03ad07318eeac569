//! Batched, differentiable frame maths on candle tensors (f32).
//!
//! [`Rotations`] holds rotation matrices `mats: [..., 3, 3]` and [`Rigids`] adds translations
//! `trans: [..., 3]` (Å unless a caller documents otherwise). They expose the same verbs
//! as the scalar [`crate::Rotation`] / [`crate::Rigid`], with the same conventions
//! (`a.compose(&b)` applies `b` first; quaternions `[w, x, y, z]`, `w ≥ 0`; frames from N, CA, C
//! as in OpenFold `Rigid.from_3_points(p_neg_x_axis = N, origin = CA, p_xy_plane = C)`).
//!
//! All arithmetic is f32 (inputs of other dtypes are cast on entry) and written as
//! element-wise products and sums over the 3×3 entries rather than `matmul`, following
//! AlphaFold's `r3.py` precision note. Every op used has a candle backward pass, so
//! gradients flow through all methods (the branch selections in the quaternion and log
//! maps are piecewise-constant masks). Leading batch dims broadcast (numpy rules).

use candle_core::{D, DType, Device, Tensor};

use crate::error::Se3Error;
use crate::{Rigid, Rotation, Vec3};

type Result<T> = std::result::Result<T, Se3Error>;

/// Check that the last dims of `t` are `tail`, returning the batch dims.
fn batch_dims<'a>(
    t: &'a Tensor,
    tail: &[usize],
    context: &'static str,
    expected: &'static str,
) -> Result<&'a [usize]> {
    let dims = t.dims();
    if dims.len() < tail.len() || &dims[dims.len() - tail.len()..] != tail {
        return Err(Se3Error::Shape {
            context,
            expected,
            got: dims.to_vec(),
        });
    }
    Ok(&dims[..dims.len() - tail.len()])
}

fn to_f32(t: &Tensor) -> Result<Tensor> {
    Ok(if t.dtype() == DType::F32 {
        t.clone()
    } else {
        t.to_dtype(DType::F32)?
    })
}

/// Component `i` of the last dim, keeping it: `[..., k] → [..., 1]`.
fn comp(t: &Tensor, i: usize) -> Result<Tensor> {
    Ok(t.narrow(D::Minus1, i, 1)?)
}

/// Entry `(i, j)` of `[..., 3, 3]` as `[..., 1]`.
fn entry(m: &Tensor, i: usize, j: usize) -> Result<Tensor> {
    Ok(m.narrow(D::Minus2, i, 1)?
        .narrow(D::Minus1, j, 1)?
        .squeeze(D::Minus1)?)
}

/// Sum over the last dim keeping it: `[..., k] → [..., 1]`.
fn dot(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok(a.broadcast_mul(b)?.sum_keepdim(D::Minus1)?)
}

/// `a / sqrt(|a|² + eps)` over the last dim.
fn normalize(a: &Tensor, eps: f64) -> Result<Tensor> {
    let n = a.sqr()?.sum_keepdim(D::Minus1)?.affine(1.0, eps)?.sqrt()?;
    Ok(a.broadcast_div(&n)?)
}

/// Cross product over the last dim: `[..., 3] × [..., 3] → [..., 3]`.
pub fn cross(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (ax, ay, az) = (comp(a, 0)?, comp(a, 1)?, comp(a, 2)?);
    let (bx, by, bz) = (comp(b, 0)?, comp(b, 1)?, comp(b, 2)?);
    let x = (ay.broadcast_mul(&bz)? - az.broadcast_mul(&by)?)?;
    let y = (az.broadcast_mul(&bx)? - ax.broadcast_mul(&bz)?)?;
    let z = (ax.broadcast_mul(&by)? - ay.broadcast_mul(&bx)?)?;
    Ok(Tensor::cat(&[&x, &y, &z], D::Minus1)?)
}

/// Build `[..., 3, 3]` from nine `[..., 1]` entries in row-major order.
fn from_entries(e: [&Tensor; 9]) -> Result<Tensor> {
    let flat = Tensor::cat(&e, D::Minus1)?; // [..., 9]
    let mut dims = flat.dims().to_vec();
    dims.pop();
    dims.extend([3, 3]);
    Ok(flat.reshape(dims)?) // [..., 3, 3]
}

/// Batched rotations: `mats: [..., 3, 3]` f32, proper rotation matrices acting on column vectors.
#[derive(Debug, Clone)]
pub struct Rotations {
    /// `[..., 3, 3]` rotation matrices (f32).
    pub mats: Tensor,
}

impl Rotations {
    /// Wrap `[..., 3, 3]` matrices (cast to f32). Orthonormality is not checked.
    ///
    /// # Errors
    /// [`Se3Error::Shape`] if the last two dims are not `3, 3`.
    pub fn new(mats: Tensor) -> Result<Self> {
        batch_dims(&mats, &[3, 3], "Rotations::new", "[..., 3, 3]")?;
        Ok(Self {
            mats: to_f32(&mats)?,
        })
    }

    /// Identity rotations of batch shape `batch` (`[*batch, 3, 3]`).
    ///
    /// # Errors
    /// Candle errors only.
    pub fn identity(batch: &[usize], device: &Device) -> Result<Self> {
        let mut dims = batch.to_vec();
        dims.extend([3, 3]);
        let eye = Tensor::eye(3, DType::F32, device)?
            .broadcast_as(dims)?
            .contiguous()?;
        Ok(Self { mats: eye })
    }

    /// Batch dims (all dims except the trailing `3, 3`).
    #[must_use]
    pub fn batch_shape(&self) -> &[usize] {
        let d = self.mats.dims();
        &d[..d.len().saturating_sub(2)]
    }

    /// `self ∘ other` (apply `other` first): `(A B)ᵢⱼ = Σₖ Aᵢₖ Bₖⱼ`, element-wise.
    ///
    /// # Errors
    /// Candle errors (incompatible batch shapes).
    pub fn compose(&self, other: &Self) -> Result<Self> {
        let a = self.mats.unsqueeze(self.mats.rank())?; // [..., i, k, 1]
        let b = other.mats.unsqueeze(other.mats.rank() - 2)?; // [..., 1, k, j]
        let prod = a.broadcast_mul(&b)?; // [..., i, k, j]
        Ok(Self {
            mats: prod.sum(D::Minus2)?,
        }) // [..., i, j]
    }

    /// Inverse rotations (transposes).
    ///
    /// # Errors
    /// Candle errors only.
    pub fn inverse(&self) -> Result<Self> {
        Ok(Self {
            mats: self.mats.transpose(D::Minus2, D::Minus1)?.contiguous()?,
        })
    }

    /// Rotate vectors: `pts: [..., 3] → R pts: [..., 3]` (batch dims broadcast).
    ///
    /// # Errors
    /// [`Se3Error::Shape`] if `pts` is not `[..., 3]`; candle errors.
    pub fn apply(&self, pts: &Tensor) -> Result<Tensor> {
        batch_dims(pts, &[3], "Rotations::apply", "[..., 3]")?;
        let p = to_f32(pts)?.unsqueeze(pts.rank() - 1)?; // [..., 1, 3]
        Ok(self.mats.broadcast_mul(&p)?.sum(D::Minus1)?) // [..., 3]
    }

    /// Rotate by the inverse: `pts: [..., 3] → Rᵀ pts`.
    ///
    /// # Errors
    /// As [`Rotations::apply`].
    pub fn apply_inverse(&self, pts: &Tensor) -> Result<Tensor> {
        batch_dims(pts, &[3], "Rotations::apply_inverse", "[..., 3]")?;
        let p = to_f32(pts)?.unsqueeze(pts.rank())?; // [..., 3, 1]
        Ok(self.mats.broadcast_mul(&p)?.sum(D::Minus2)?) // [..., 3]
    }

    /// Gram–Schmidt frames from N, CA, C positions `[..., 3]` (OpenFold `from_3_points`
    /// convention, see [`crate::Rigid::from_three_points`]). `eps = 1e-8` is added under the
    /// square roots, so degenerate input gives finite (meaningless) output rather than NaN.
    ///
    /// # Errors
    /// [`Se3Error::Shape`]; candle errors (incompatible shapes).
    pub fn from_three_points(n: &Tensor, ca: &Tensor, c: &Tensor) -> Result<Self> {
        const CTX: &str = "Rotations::from_three_points";
        for t in [n, ca, c] {
            batch_dims(t, &[3], CTX, "[..., 3]")?;
        }
        let (n, ca, c) = (to_f32(n)?, to_f32(ca)?, to_f32(c)?);
        let e0 = normalize(&ca.broadcast_sub(&n)?, 1e-8)?;
        let v1 = c.broadcast_sub(&ca)?;
        let u1 = v1.broadcast_sub(&e0.broadcast_mul(&dot(&e0, &v1)?)?)?;
        let e1 = normalize(&u1, 1e-8)?;
        let e2 = cross(&e0, &e1)?;
        let r = e0.rank();
        Ok(Self {
            mats: Tensor::stack(&[&e0, &e1, &e2], r)?,
        }) // columns: [..., 3, 3]
    }

    /// Rotations from quaternions `[..., 4]` (`[w, x, y, z]`, any non-zero norm; normalised here).
    ///
    /// # Errors
    /// [`Se3Error::Shape`]; candle errors.
    pub fn from_quaternions(q: &Tensor) -> Result<Self> {
        batch_dims(q, &[4], "Rotations::from_quaternions", "[..., 4]")?;
        let q = normalize(&to_f32(q)?, 1e-12)?;
        let (w, x, y, z) = (comp(&q, 0)?, comp(&q, 1)?, comp(&q, 2)?, comp(&q, 3)?);
        let two = |t: Tensor| t.affine(2.0, 0.0);
        let one_minus_two = |t: Tensor| t.affine(-2.0, 1.0);
        let (xx, yy, zz) = (x.sqr()?, y.sqr()?, z.sqr()?);
        let (xy, xz, yz) = ((&x * &y)?, (&x * &z)?, (&y * &z)?);
        let (wx, wy, wz) = ((&w * &x)?, (&w * &y)?, (&w * &z)?);
        let m00 = one_minus_two((&yy + &zz)?)?;
        let m01 = two((&xy - &wz)?)?;
        let m02 = two((&xz + &wy)?)?;
        let m10 = two((&xy + &wz)?)?;
        let m11 = one_minus_two((&xx + &zz)?)?;
        let m12 = two((&yz - &wx)?)?;
        let m20 = two((&xz - &wy)?)?;
        let m21 = two((&yz + &wx)?)?;
        let m22 = one_minus_two((&xx + &yy)?)?;
        Ok(Self {
            mats: from_entries([&m00, &m01, &m02, &m10, &m11, &m12, &m20, &m21, &m22])?,
        })
    }

    /// Unit quaternions `[..., 4]` (`[w, x, y, z]`, `w ≥ 0`), Shepperd's method (largest of the
    /// four `4q²` candidates selects the branch; see [`crate::quaternion::matrix_to_quaternion`]).
    ///
    /// # Errors
    /// Candle errors only.
    pub fn to_quaternions(&self) -> Result<Tensor> {
        let m = &self.mats;
        let e = |i, j| entry(m, i, j);
        let (m00, m11, m22) = (e(0, 0)?, e(1, 1)?, e(2, 2)?);
        let (m01, m02, m10) = (e(0, 1)?, e(0, 2)?, e(1, 0)?);
        let (m12, m20, m21) = (e(1, 2)?, e(2, 0)?, e(2, 1)?);
        // 4w², 4x², 4y², 4z²
        let a0 = (((&m00 + &m11)? + &m22)?).affine(1.0, 1.0)?;
        let a1 = (((&m00 - &m11)? - &m22)?).affine(1.0, 1.0)?;
        let a2 = (((&m11 - &m00)? - &m22)?).affine(1.0, 1.0)?;
        let a3 = (((&m22 - &m00)? - &m11)?).affine(1.0, 1.0)?;
        let (d21, d02, d10) = ((&m21 - &m12)?, (&m02 - &m20)?, (&m10 - &m01)?);
        let (s01, s02, s12) = ((&m01 + &m10)?, (&m02 + &m20)?, (&m12 + &m21)?);
        let cands = [
            [&a0, &d21, &d02, &d10],
            [&d21, &a1, &s01, &s02],
            [&d02, &s01, &a2, &s12],
            [&d10, &s02, &s12, &a3],
        ];
        let a_all = Tensor::cat(&[&a0, &a1, &a2, &a3], D::Minus1)?; // [..., 4]
        let best = a_all.argmax_keepdim(D::Minus1)?; // [..., 1] u32
        let mut q: Option<Tensor> = None;
        for (k, cand) in cands.iter().enumerate() {
            let a_k = [&a0, &a1, &a2, &a3][k];
            // 2|q_k| = sqrt(a_k); candidate = row / (2 sqrt(a_k))
            let denom = a_k.maximum(1e-12)?.sqrt()?.affine(2.0, 0.0)?;
            let row = Tensor::cat(cand, D::Minus1)?.broadcast_div(&denom)?; // [..., 4]
            let mask = best.eq(k as u32)?.to_dtype(DType::F32)?; // [..., 1]
            let term = row.broadcast_mul(&mask)?;
            q = Some(match q {
                None => term,
                Some(acc) => (acc + term)?,
            });
        }
        let q = match q {
            Some(q) => normalize(&q, 1e-12)?,
            None => {
                return Err(Se3Error::Degenerate {
                    context: "Rotations::to_quaternions",
                    reason: "empty",
                });
            }
        };
        let sign = comp(&q, 0)?
            .ge(0.0)?
            .to_dtype(DType::F32)?
            .affine(2.0, -1.0)?; // ±1
        Ok(q.broadcast_mul(&sign)?)
    }

    /// Upload scalar rotations as `[n, 3, 3]` f32.
    ///
    /// # Errors
    /// Candle errors only.
    pub fn from_scalar(rots: &[Rotation], device: &Device) -> Result<Self> {
        let data: Vec<f32> = rots
            .iter()
            .flat_map(|r| {
                r.matrix()
                    .transpose()
                    .iter()
                    .map(|&v| v as f32)
                    .collect::<Vec<_>>()
            })
            .collect();
        Ok(Self {
            mats: Tensor::from_vec(data, (rots.len(), 3, 3), device)?,
        })
    }

    /// Download as scalar rotations, flattening the batch dims in row-major order.
    /// Matrices are taken as they are (not re-orthonormalised).
    ///
    /// # Errors
    /// Candle errors only.
    pub fn to_scalar(&self) -> Result<Vec<Rotation>> {
        let flat: Vec<f32> = self.mats.flatten_all()?.to_vec1()?;
        Ok(flat
            .chunks_exact(9)
            .map(|c| {
                Rotation::from_matrix_unchecked(nalgebra::Matrix3::from_row_slice(
                    &c.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
                ))
            })
            .collect())
    }

    /// Stop gradients.
    #[must_use]
    pub fn detach(&self) -> Self {
        Self {
            mats: self.mats.detach(),
        }
    }
}

/// Batched rigid transforms `x ↦ R x + t`: `rots.mats: [..., 3, 3]`, `trans: [..., 3]`, f32.
#[derive(Debug, Clone)]
pub struct Rigids {
    /// Rotation part, `[..., 3, 3]`.
    pub rots: Rotations,
    /// Translation part, `[..., 3]` (Å unless documented otherwise by the caller).
    pub trans: Tensor,
}

impl Rigids {
    /// Combine rotations and translations with the same batch shape.
    ///
    /// # Errors
    /// [`Se3Error::Shape`] if `trans` is not `[*batch, 3]` for the batch shape of `rots`.
    pub fn new(rots: Rotations, trans: Tensor) -> Result<Self> {
        let b = batch_dims(
            &trans,
            &[3],
            "Rigids::new",
            "[..., 3] matching the rotations' batch",
        )?;
        if b != rots.batch_shape() {
            return Err(Se3Error::Shape {
                context: "Rigids::new",
                expected: "[..., 3] matching the rotations' batch",
                got: trans.dims().to_vec(),
            });
        }
        Ok(Self {
            rots,
            trans: to_f32(&trans)?,
        })
    }

    /// Identity transforms of batch shape `batch`.
    ///
    /// # Errors
    /// Candle errors only.
    pub fn identity(batch: &[usize], device: &Device) -> Result<Self> {
        let mut dims = batch.to_vec();
        dims.push(3);
        Ok(Self {
            rots: Rotations::identity(batch, device)?,
            trans: Tensor::zeros(dims, DType::F32, device)?,
        })
    }

    /// Batch dims.
    #[must_use]
    pub fn batch_shape(&self) -> &[usize] {
        self.rots.batch_shape()
    }

    /// `self ∘ other` (apply `other` first): `(R₁R₂, R₁t₂ + t₁)`.
    ///
    /// # Errors
    /// Candle errors (incompatible batch shapes).
    pub fn compose(&self, other: &Self) -> Result<Self> {
        let rots = self.rots.compose(&other.rots)?;
        let trans = self.rots.apply(&other.trans)?.broadcast_add(&self.trans)?;
        Ok(Self { rots, trans })
    }

    /// Inverse transforms `(Rᵀ, −Rᵀt)`.
    ///
    /// # Errors
    /// Candle errors only.
    pub fn inverse(&self) -> Result<Self> {
        let rots = self.rots.inverse()?;
        let trans = rots.apply(&self.trans)?.neg()?;
        Ok(Self { rots, trans })
    }

    /// Transform points `[..., 3]`: `R p + t` (batch dims broadcast, e.g. frames `[B, N]` with
    /// points `[B, N, 3]`, or frames `[B, N, 1]` with points `[B, N, M, 3]`).
    ///
    /// # Errors
    /// [`Se3Error::Shape`]; candle errors.
    pub fn apply(&self, pts: &Tensor) -> Result<Tensor> {
        Ok(self.rots.apply(pts)?.broadcast_add(&self.trans)?)
    }

    /// Inverse-transform points: `Rᵀ (p − t)`.
    ///
    /// # Errors
    /// As [`Rigids::apply`].
    pub fn apply_inverse(&self, pts: &Tensor) -> Result<Tensor> {
        batch_dims(pts, &[3], "Rigids::apply_inverse", "[..., 3]")?;
        self.rots
            .apply_inverse(&to_f32(pts)?.broadcast_sub(&self.trans)?)
    }

    /// Backbone frames from N, CA, C `[..., 3]` (origin CA; OpenFold `from_3_points(N, CA, C)`).
    ///
    /// # Errors
    /// As [`Rotations::from_three_points`].
    pub fn from_three_points(n: &Tensor, ca: &Tensor, c: &Tensor) -> Result<Self> {
        let rots = Rotations::from_three_points(n, ca, c)?;
        let trans = to_f32(ca)?
            .broadcast_as(rots.mats.dims()[..rots.mats.rank() - 1].to_vec())?
            .contiguous()?;
        Ok(Self { rots, trans })
    }

    /// `[..., 7]` = `[qw, qx, qy, qz, tx, ty, tz]` (`qw ≥ 0`).
    ///
    /// # Errors
    /// Candle errors only.
    pub fn to_tensor7(&self) -> Result<Tensor> {
        Ok(Tensor::cat(
            &[&self.rots.to_quaternions()?, &self.trans],
            D::Minus1,
        )?)
    }

    /// Inverse of [`Rigids::to_tensor7`]; quaternions are normalised.
    ///
    /// # Errors
    /// [`Se3Error::Shape`] if not `[..., 7]`; candle errors.
    pub fn from_tensor7(t: &Tensor) -> Result<Self> {
        batch_dims(t, &[7], "Rigids::from_tensor7", "[..., 7]")?;
        let t = to_f32(t)?;
        let rots = Rotations::from_quaternions(&t.narrow(D::Minus1, 0, 4)?)?;
        Ok(Self {
            rots,
            trans: t.narrow(D::Minus1, 4, 3)?.contiguous()?,
        })
    }

    /// Upload scalar rigids: rotations `[n, 3, 3]`, translations `[n, 3]`.
    ///
    /// # Errors
    /// Candle errors only.
    pub fn from_scalar(rigids: &[Rigid], device: &Device) -> Result<Self> {
        let rots: Vec<Rotation> = rigids.iter().map(|r| r.rot).collect();
        let trans: Vec<f32> = rigids
            .iter()
            .flat_map(|r| [r.trans.x as f32, r.trans.y as f32, r.trans.z as f32])
            .collect();
        Ok(Self {
            rots: Rotations::from_scalar(&rots, device)?,
            trans: Tensor::from_vec(trans, (rigids.len(), 3), device)?,
        })
    }

    /// Download as scalar rigids (batch dims flattened, row-major).
    ///
    /// # Errors
    /// Candle errors only.
    pub fn to_scalar(&self) -> Result<Vec<Rigid>> {
        let rots = self.rots.to_scalar()?;
        let trans: Vec<f32> = self.trans.flatten_all()?.to_vec1()?;
        Ok(rots
            .into_iter()
            .zip(trans.chunks_exact(3))
            .map(|(r, t)| {
                Rigid::new(
                    r,
                    Vec3::new(f64::from(t[0]), f64::from(t[1]), f64::from(t[2])),
                )
            })
            .collect())
    }

    /// Multiply translations by `factor` (e.g. 0.1 for Å → nm).
    ///
    /// # Errors
    /// Candle errors only.
    pub fn scale_translation(&self, factor: f64) -> Result<Self> {
        Ok(Self {
            rots: self.rots.clone(),
            trans: self.trans.affine(factor, 0.0)?,
        })
    }

    /// Stop gradients.
    #[must_use]
    pub fn detach(&self) -> Self {
        Self {
            rots: self.rots.detach(),
            trans: self.trans.detach(),
        }
    }
}

/// Batched SO(3) exponential: rotation vectors `[..., 3]` (radians) → [`Rotations`],
/// Rodrigues' formula `I + (sin θ/θ) K + ((1 − cos θ)/θ²)(ωωᵀ − θ² I)`, Taylor branch for θ² < 1e-6
/// (selected by a mask; both branches finite, so gradients are finite at ω = 0).
///
/// # Errors
/// [`Se3Error::Shape`]; candle errors.
pub fn so3_exp(omega: &Tensor) -> Result<Rotations> {
    batch_dims(omega, &[3], "so3_exp", "[..., 3]")?;
    let w = to_f32(omega)?;
    let t2 = w.sqr()?.sum_keepdim(D::Minus1)?; // [..., 1]
    let small = t2.lt(1e-6)?;
    let t2_safe = small.where_cond(&t2.ones_like()?, &t2)?;
    let t = t2_safe.sqrt()?;
    let a_big = (t.sin()? / &t)?;
    let b_big = (t.cos()?.affine(-1.0, 1.0)? / &t2_safe)?;
    let a_small = t2.affine(-1.0 / 6.0, 1.0)?;
    let b_small = t2.affine(-1.0 / 24.0, 0.5)?;
    let a = small.where_cond(&a_small, &a_big)?;
    let b = small.where_cond(&b_small, &b_big)?;
    let (x, y, z) = (comp(&w, 0)?, comp(&w, 1)?, comp(&w, 2)?);
    // I + a K + b (ωωᵀ − θ² I)
    let diag = |c: &Tensor| -> Result<Tensor> {
        Ok(((b.broadcast_mul(&(c.sqr()? - &t2)?))?).affine(1.0, 1.0)?)
    };
    let off = |p: &Tensor, q: &Tensor, k: &Tensor, sign: f64| -> Result<Tensor> {
        Ok((b.broadcast_mul(&(p * q)?)? + a.broadcast_mul(&k.affine(sign, 0.0)?)?)?)
    };
    let m00 = diag(&x)?;
    let m11 = diag(&y)?;
    let m22 = diag(&z)?;
    let m01 = off(&x, &y, &z, -1.0)?;
    let m02 = off(&x, &z, &y, 1.0)?;
    let m10 = off(&x, &y, &z, 1.0)?;
    let m12 = off(&y, &z, &x, -1.0)?;
    let m20 = off(&x, &z, &y, -1.0)?;
    let m21 = off(&y, &z, &x, 1.0)?;
    Ok(Rotations {
        mats: from_entries([&m00, &m01, &m02, &m10, &m11, &m12, &m20, &m21, &m22])?,
    })
}

/// Odd polynomial approximation of `atan(x)` on `[0, 1]` (degree 15, least-squares fit on
/// Chebyshev nodes; max error 4e-8, below f32 resolution). candle has no atan/atan2.
fn atan_unit(x: &Tensor) -> Result<Tensor> {
    const C: [f64; 8] = [
        0.999_999_436_774_825_1,
        -0.333_301_063_526_120_4,
        0.199_485_048_346_174_6,
        -0.139_157_796_611_834_2,
        0.096_561_945_756_226_6,
        -0.056_062_281_485_040_96,
        0.021_945_958_443_558_747,
        -0.004_073_120_735_064_245,
    ];
    let x2 = x.sqr()?;
    let mut p = x2.affine(C[7], C[6])?;
    for &c in C[..6].iter().rev() {
        p = (p * &x2)?.affine(1.0, c)?;
    }
    Ok((p * x)?)
}

/// Batched SO(3) logarithm: [`Rotations`] → rotation vectors `[..., 3]` with `|ω| ∈ [0, π]`.
///
/// Through the canonical quaternion `(w, v)`: `θ = 2 atan2(|v|, w)` (atan2 from a polynomial
/// atan with range reduction), `ω = θ v/|v|`, and `ω ≈ (2/w)(1 − |v|²/3w²) v` for `|v|² < 1e-6`.
///
/// # Errors
/// Candle errors only.
pub fn so3_log(rots: &Rotations) -> Result<Tensor> {
    let q = rots.to_quaternions()?;
    let w = comp(&q, 0)?; // ≥ 0
    let v = q.narrow(D::Minus1, 1, 3)?;
    let s2 = v.sqr()?.sum_keepdim(D::Minus1)?;
    let small = s2.lt(1e-6)?;
    let s = small.where_cond(&s2.ones_like()?, &s2)?.sqrt()?;
    // half angle φ = atan2(s, w) ∈ [0, π/2]
    let s_le_w = s.le(&w)?;
    let hi = s.maximum(&w)?;
    let lo = s.minimum(&w)?;
    let at = atan_unit(&(lo / &hi)?)?;
    let phi = s_le_w.where_cond(&at, &at.affine(-1.0, std::f64::consts::FRAC_PI_2)?)?;
    let big = (phi.affine(2.0, 0.0)? / &s)?;
    let w_safe = w.maximum(1e-6)?;
    let small_f =
        ((s2 / w_safe.sqr()?)?.affine(-1.0 / 3.0, 1.0)? * w_safe.recip()?.affine(2.0, 0.0)?)?;
    let factor = small.where_cond(&small_f, &big)?;
    Ok(v.broadcast_mul(&factor)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    fn t(data: &[f32], shape: &[usize]) -> Tensor {
        Tensor::from_vec(data.to_vec(), shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn identity_shapes_and_action() {
        let id = Rigids::identity(&[2, 5], &Device::Cpu).unwrap();
        assert_eq!(id.rots.mats.dims(), &[2, 5, 3, 3]);
        assert_eq!(id.trans.dims(), &[2, 5, 3]);
        let p = t(&(0..30).map(|i| i as f32).collect::<Vec<_>>(), &[2, 5, 3]);
        let q = id.apply(&p).unwrap();
        assert_eq!(q.to_vec3::<f32>().unwrap(), p.to_vec3::<f32>().unwrap());
    }

    #[test]
    fn frames_broadcast_over_points() {
        // frames [2, 1] applied to points [2, 4, 3]
        let rots = so3_exp(&t(
            &[0.0, 0.0, std::f32::consts::FRAC_PI_2, 0.0, 0.0, 0.0],
            &[2, 1, 3],
        ))
        .unwrap();
        let rig = Rigids::new(rots, t(&[1.0, 0.0, 0.0, 0.0, 0.0, 5.0], &[2, 1, 3])).unwrap();
        let pts = t(&[1.0, 0.0, 0.0].repeat(8), &[2, 4, 3]);
        let out = rig.apply(&pts).unwrap().to_vec3::<f32>().unwrap();
        for p in &out[0] {
            assert!((p[0] - 1.0).abs() < 1e-6 && (p[1] - 1.0).abs() < 1e-6 && p[2].abs() < 1e-6);
        }
        for p in &out[1] {
            assert!((p[0] - 1.0).abs() < 1e-6 && p[1].abs() < 1e-6 && (p[2] - 5.0).abs() < 1e-6);
        }
        let back = rig.apply_inverse(&rig.apply(&pts).unwrap()).unwrap();
        let diff = (back - &pts)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-5);
    }

    #[test]
    fn shape_errors_are_reported() {
        let bad = t(&[0.0; 8], &[2, 4]);
        assert!(matches!(
            Rotations::new(bad.clone()),
            Err(Se3Error::Shape { .. })
        ));
        assert!(matches!(
            Rigids::from_tensor7(&bad),
            Err(Se3Error::Shape { .. })
        ));
        let id = Rigids::identity(&[2], &Device::Cpu).unwrap();
        assert!(matches!(id.apply(&bad), Err(Se3Error::Shape { .. })));
        assert!(matches!(
            Rigids::new(id.rots.clone(), t(&[0.0; 9], &[3, 3])),
            Err(Se3Error::Shape { .. })
        ));
    }

    #[test]
    fn log_near_zero_and_pi() {
        let w = t(
            &[
                1e-5, -2e-5, 0.0, 0.0, 0.0, 0.0, 3.1, 0.0, 0.0, 0.0, 2.0, -2.4,
            ],
            &[4, 3],
        );
        let l = so3_log(&so3_exp(&w).unwrap())
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let w = w.to_vec2::<f32>().unwrap();
        for (a, b) in l.iter().zip(&w) {
            for k in 0..3 {
                assert!((a[k] - b[k]).abs() < 2e-4, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn gradients_flow_through_every_verb() {
        let dev = Device::Cpu;
        let n = Var::from_tensor(&t(&[-1.4, 0.1, 0.2, 0.3, 3.0, -0.2], &[2, 3])).unwrap();
        let ca = Var::from_tensor(&t(&[0.0, 0.0, 0.0, 1.5, 2.0, 0.1], &[2, 3])).unwrap();
        let c = Var::from_tensor(&t(&[0.5, 1.4, 0.1, 2.2, 3.1, 1.0], &[2, 3])).unwrap();
        let omega = Var::from_tensor(&t(&[0.0, 0.0, 0.0, 0.4, -1.0, 2.0], &[2, 3])).unwrap();
        let pts = Var::from_tensor(&t(&[1.0, 2.0, 3.0, -1.0, 0.5, 0.2], &[2, 3])).unwrap();
        let frames =
            Rigids::from_three_points(n.as_tensor(), ca.as_tensor(), c.as_tensor()).unwrap();
        let noise = Rigids::new(
            so3_exp(omega.as_tensor()).unwrap(),
            Tensor::zeros((2, 3), DType::F32, &dev).unwrap(),
        )
        .unwrap();
        let composed = frames.compose(&noise).unwrap().inverse().unwrap();
        let moved = composed.apply(pts.as_tensor()).unwrap();
        let back = frames.apply_inverse(&moved).unwrap();
        let logs = so3_log(&composed.rots).unwrap();
        let t7 = composed.to_tensor7().unwrap();
        let loss = (moved.sqr().unwrap().sum_all().unwrap()
            + back.sum_all().unwrap()
            + logs.sqr().unwrap().sum_all().unwrap()
            + t7.sum_all().unwrap())
        .unwrap();
        let grads = loss.backward().unwrap();
        for (name, v) in [
            ("n", &n),
            ("ca", &ca),
            ("c", &c),
            ("omega", &omega),
            ("pts", &pts),
        ] {
            let g = grads
                .get(v.as_tensor())
                .unwrap_or_else(|| panic!("no gradient for {name}"));
            let g: Vec<f32> = g.flatten_all().unwrap().to_vec1().unwrap();
            assert!(
                g.iter().all(|x| x.is_finite()),
                "{name}: non-finite gradient {g:?}"
            );
            assert!(g.iter().any(|x| x.abs() > 1e-6), "{name}: zero gradient");
        }
    }

    #[test]
    fn exp_gradient_matches_finite_difference() {
        // d/dω of Σ R(ω) p at ω = (0.3, -0.2, 0.5), f32 central differences.
        let p = t(&[0.7, -1.1, 0.4], &[1, 3]);
        let f = |w: &[f32]| -> f32 {
            let r = so3_exp(&t(w, &[1, 3])).unwrap();
            r.apply(&p)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        let w0 = [0.3f32, -0.2, 0.5];
        let var = Var::from_tensor(&t(&w0, &[1, 3])).unwrap();
        let out = so3_exp(var.as_tensor())
            .unwrap()
            .apply(&p)
            .unwrap()
            .sum_all()
            .unwrap();
        let g: Vec<f32> = out
            .backward()
            .unwrap()
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for k in 0..3 {
            let (mut a, mut b) = (w0, w0);
            a[k] += 1e-2;
            b[k] -= 1e-2;
            let fd = (f(&a) - f(&b)) / 2e-2;
            assert!((fd - g[k]).abs() < 2e-3, "component {k}: {fd} vs {}", g[k]);
        }
    }
}
