//! What every page a browser test opens must pass: something is drawn (the screenshot is not
//! one flat colour), every image loaded, and the accessibility check (names for controls, text
//! alternatives for images, a page language).

use serde_json::json;

use crate::browser::Browser;

/// A screenshot that is (nearly) one flat colour means nothing was drawn.
pub fn assert_not_blank(png: &[u8]) {
    let img = image::load_from_memory(png)
        .expect("a PNG screenshot")
        .to_rgb8();
    let first = *img.get_pixel(0, 0);
    let differing = img.pixels().filter(|p| **p != first).count();
    let total = (img.width() * img.height()) as usize;
    assert!(
        differing * 100 >= total,
        "the screenshot is (nearly) blank: {differing} of {total} pixels differ from the background"
    );
}

/// Every control has a name a screen reader can say, every image a text alternative, every
/// `svg` drawn as an image a name, and the page says its language.
pub fn assert_accessible(browser: &Browser) {
    let problems = browser.eval(
        "const bad = [];
         for (const b of document.querySelectorAll('button'))
           if (!(b.textContent.trim() || b.getAttribute('aria-label'))) bad.push('a button without a name');
         for (const i of document.querySelectorAll('img'))
           if (!i.hasAttribute('alt')) bad.push('an image without alt: ' + i.src);
         for (const f of document.querySelectorAll('input, select'))
           if (!(f.labels && f.labels.length) && !f.getAttribute('aria-label')) bad.push('an unlabelled field: ' + (f.id || f.name));
         for (const s of document.querySelectorAll('svg[role=img]')) {
           const ids = (s.getAttribute('aria-labelledby') || '').split(/\\s+/).filter(Boolean);
           if (!ids.length || !ids.every(id => (document.getElementById(id) || {}).textContent))
             bad.push('a chart without a name');
         }
         if (document.documentElement.lang !== 'en') bad.push('no page language');
         return bad;",
        json!([]),
    );
    assert_eq!(problems, json!([]), "accessibility problems");
}

/// Every `<img>` on the page has loaded (decoded, with a width); returns how many there are.
pub fn assert_images_loaded(browser: &Browser) -> usize {
    let images = browser.eval(
        "return [...document.images].map(i => [i.complete && i.naturalWidth > 0, i.alt]);",
        json!([]),
    );
    let images = images.as_array().cloned().unwrap_or_default();
    let broken: Vec<_> = images.iter().filter(|i| i[0] != true).collect();
    assert!(broken.is_empty(), "images that did not load: {broken:?}");
    images.len()
}
