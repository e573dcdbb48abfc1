//! The MusiCNN network, run by tract: one mel patch in, the 200-d embedding and 50 tags out.
//!
//! The weights ship inside the binary ([`EMBEDDED_MODEL`], `models/msd_musicnn_int8.nnef.tgz`;
//! see `models/MODEL.md`): nothing is read or downloaded at run time. That file is
//! `models/msd_musicnn_int8.onnx` (made by `models/convert.py`) as tract's own NNEF graph,
//! already typed and decluttered: `tests/embedding.rs` converts the ONNX again and checks the
//! shipped file is byte for byte its conversion (`PLAYLISTA_UPDATE_MODEL=1` rewrites it). So the
//! binary links tract's NNEF reader, not its ONNX parser and protobuf (issue 20: the box's
//! binary size). tract folds the ONNX file's int8 weights (one scale per output channel) into
//! float constants when it types the graph, so the file holds float weights, gzipped (1.3 MB
//! against the ONNX file's 0.8 MB), and the runtime computes in float: tract's integer kernels
//! are much slower on x86.
//!
//! A [`Model`] is loaded and optimised once per worker for batch 1 (issue #5 measured it faster
//! than batch 8 in tract, with 49 MB against 400 MB) and is then used for every patch of every
//! track, through one run state kept from patch to patch. Each run still allocates its
//! activations inside tract (a few MB per ~60 ms patch; the analysing processes keep freed
//! heap for reuse, `os::keep_freed_memory`); everything per sample or per frame lives
//! elsewhere.

use std::io::Cursor;

use tract_nnef::prelude::*;

use super::mel::{N_MELS, PATCH_FRAMES, PATCH_LEN};

/// The quantised MSD_musicnn model as NNEF, compiled in.
pub static EMBEDDED_MODEL: &[u8] = include_bytes!("../../models/msd_musicnn_int8.nnef.tgz");

/// Width of the embedding: the penultimate dense layer before its ReLU.
pub const EMBEDDING_DIM: usize = 200;
pub const N_TAGS: usize = 50;

/// The ONNX graph's outputs the network is cut to, in this order. Its only input,
/// `model/melspectrogram:0`, is [N, 187, 96], fixed to N = 1.
pub const OUTPUTS: [&str; 2] = ["model/tags:0", "model/dense/BiasAdd:0"];

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot load the MusiCNN model: {0}")]
    Load(String),
    #[error("the MusiCNN model failed on a patch: {0}")]
    Run(String),
}

/// The optimised, runnable network for one patch at a time, with its run state (kept from
/// patch to patch, so each run does not set the plan's state up again).
pub struct Model {
    state: TypedSimpleState,
}

impl Model {
    /// The model compiled into the binary.
    pub fn embedded() -> Result<Self, ModelError> {
        let model = tract_nnef::nnef()
            .model_for_read(&mut Cursor::new(EMBEDDED_MODEL))
            .map_err(|e| ModelError::Load(format!("{e:#}")))?;
        Self::from_typed(model)
    }

    /// A typed graph of the network (input fixed to one patch, outputs [`OUTPUTS`]): the
    /// embedded one, or the float ONNX export for comparisons.
    pub fn from_typed(model: TypedModel) -> Result<Self, ModelError> {
        model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .and_then(|plan| plan.spawn())
            .map(|state| Model { state })
            .map_err(|e| ModelError::Load(format!("{e:#}")))
    }

    /// Runs one patch (`PATCH_FRAMES` × `N_MELS` log-mel values, frame-major).
    pub fn run(
        &mut self,
        patch: &[f32],
        embedding: &mut [f32; EMBEDDING_DIM],
        tags: &mut [f32; N_TAGS],
    ) -> Result<(), ModelError> {
        debug_assert_eq!(patch.len(), PATCH_LEN);
        let fail = |e: TractError| ModelError::Run(format!("{e:#}"));
        let input = Tensor::from_shape(&[1, PATCH_FRAMES, N_MELS], patch).map_err(fail)?;
        let outputs = self.state.run(tvec!(input.into_tvalue())).map_err(fail)?;
        let plain = |ix: usize| outputs[ix].try_as_plain_ram()?.as_slice::<f32>();
        let t = plain(0).map_err(fail)?;
        let e = plain(1).map_err(fail)?;
        if t.len() != N_TAGS || e.len() != EMBEDDING_DIM {
            return Err(ModelError::Run(format!(
                "outputs of {} and {} values, expected {N_TAGS} and {EMBEDDING_DIM}",
                t.len(),
                e.len()
            )));
        }
        tags.copy_from_slice(t);
        embedding.copy_from_slice(e);
        Ok(())
    }
}
