//! One module per subcommand.

pub(crate) mod assemble;
pub(crate) mod data;
pub(crate) mod eval;
pub(crate) mod generate;
pub(crate) mod inspect;
pub(crate) mod io;
pub(crate) mod rollout;
pub(crate) mod scaffold;
pub(crate) mod tokenize;
pub(crate) mod weights;
pub(crate) mod train;
