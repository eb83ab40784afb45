//! `pimg check IMAGE`: the firmware's rules (`firmware`) applied to an image's boot partition.

use crate::firmware::{check, model_by_id, model_ids, Model, Report};
use crate::prove::image::BootPartition;

/// Why `pimg check` could not judge an image.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{image}: {source}")]
    Read {
        image: String,
        source: crate::codec::reader::ReadError,
    },
    #[error(transparent)]
    Board(#[from] crate::profile::board::BoardError),
    #[error("'{0}' is not a board model: use {models}", models = model_ids())]
    UnknownModel(String),
    #[error("{image}: which boards is it for? pass --board NAME or --model ID (no buildinfo beside it names a board)")]
    NoModels { image: String },
}

/// `pimg check IMAGE`: the models come from `--model`, else the board profile (`--board`,
/// else the board the buildinfo beside the image names).
pub fn check_image(
    image: &std::path::Path,
    board: Option<&str>,
    model_ids: &[String],
) -> Result<(Vec<&'static Model>, Report), CheckError> {
    let name = image.display().to_string();
    let mut models = Vec::new();
    for id in model_ids {
        models.push(model_by_id(id).ok_or_else(|| CheckError::UnknownModel(id.clone()))?);
    }
    if models.is_empty() {
        let board = match board {
            Some(b) => Some(b.to_string()),
            None => crate::prove::open::read_buildinfo_beside(image).map(|info| info.board.name),
        };
        if let Some(b) = board {
            let loaded = crate::profile::board::load(&b)?;
            models = loaded
                .profile
                .board
                .models
                .iter()
                .filter_map(|m| model_by_id(m))
                .collect();
        }
    }
    if models.is_empty() {
        return Err(CheckError::NoModels { image: name });
    }
    let mut part = BootPartition::open(image).map_err(|source| CheckError::Read {
        image: name.clone(),
        source,
    })?;
    let report = check(&mut part, &models);
    Ok((models, report))
}
