//! Files every page needs: the stylesheet (the `style.css` template plus
//! the log colours), an icon, and `.nojekyll` so that GitHub Pages serves
//! files as they are.

use minijinja::context;

use super::Build;
use crate::ansi;
use crate::error::SiteError;
use crate::output::Output;

const FAVICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">\
<path d=\"M8 1l7 7-7 7-7-7z\" fill=\"#2e9e44\"/></svg>\n";

pub fn render_assets(b: &Build, out: &mut Output) -> Result<(), SiteError> {
    out.always("assets", |files| {
        let mut css = b.renderer.render("style.css", context! {})?;
        css.push_str("\n/* Log colours (ANSI SGR), as classes: the CSP forbids inline styles. */\n");
        css.push_str(&ansi::css());
        files.write("style.css", css.as_bytes())?;
        files.write("favicon.svg", FAVICON.as_bytes())?;
        files.write(".nojekyll", b"")
    })
}
