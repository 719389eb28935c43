// MA-GIG Explorer stage view: a full-window overlay of the maps and path images, driven from the keyboard.
// The stage's HTML (magig_core/explorer/stage.py) embeds every path image; this script only chooses which
// one shows. Keys act only while the stage is open and never while typing into a field.
(() => {
  const OPEN = "magig-stage-on";
  let timer = null;

  const stage = () => document.querySelector("#stage .magig-stage");
  const isOpen = () => document.body.classList.contains(OPEN);

  function show(index) {
    const root = stage();
    const slider = root && root.querySelector(".stage-slider");
    if (!slider) return;
    const last = Number(slider.max);
    const i = Math.min(Math.max(index, 0), last);
    slider.value = String(i);
    root.querySelectorAll(".stage-path[data-schedule]").forEach((cell) => {
      const frame = JSON.parse(cell.dataset.schedule)[i];
      cell.querySelectorAll(".stage-frame").forEach((el) => { el.hidden = Number(el.dataset.frame) !== frame; });
    });
    const t = JSON.parse(slider.dataset.t)[i];
    root.querySelector(".stage-position").textContent = `t = ${t.toFixed(2)}`;
  }

  const position = () => Number((stage()?.querySelector(".stage-slider") || {}).value || 0);

  function pause() {
    clearInterval(timer);
    timer = null;
    const button = stage()?.querySelector(".stage-play");
    if (button) button.textContent = "▶ Play";
  }

  function play() {
    const root = stage();
    const slider = root && root.querySelector(".stage-slider");
    if (!slider || timer) return;
    const fps = Number(root.dataset.fps) || 5;
    if (position() >= Number(slider.max)) show(0);
    timer = setInterval(() => {
      const current = stage()?.querySelector(".stage-slider");
      if (!current || !isOpen()) return pause();
      show(position() >= Number(current.max) ? 0 : position() + 1);
    }, 1000 / fps);
    root.querySelector(".stage-play").textContent = "❚❚ Pause";
  }

  function open() {
    document.activeElement?.blur?.();
    document.body.classList.add(OPEN);
  }

  function close() {
    pause();
    document.body.classList.remove(OPEN);
  }

  document.addEventListener("keydown", (event) => {
    if (!isOpen() || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target instanceof Element ? event.target : null;
    const onSlider = target?.matches(".stage-slider");
    if (!onSlider && target?.closest("input, textarea, select, [contenteditable]:not([contenteditable=false])")) return;
    const steps = { ArrowRight: 1, ArrowLeft: -1 };
    if (event.key in steps && !onSlider) {
      event.preventDefault();
      pause();
      show(position() + steps[event.key]);
    } else if (event.key === " ") {
      event.preventDefault();
      timer ? pause() : play();
    } else if (event.key === "Home" || event.key === "End") {
      event.preventDefault();
      pause();
      show(event.key === "Home" ? 0 : Infinity);
    } else if (event.key === "Escape") {
      close();
    }
  });

  document.addEventListener("input", (event) => {
    if (event.target instanceof Element && event.target.matches("#stage .stage-slider")) {
      pause();
      show(Number(event.target.value));
    }
  });

  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (target?.closest("#stage-open")) open();
    else if (target?.closest("#stage .stage-exit")) close();
    else if (target?.closest("#stage .stage-play")) timer ? pause() : play();
  });

  // While a run walks its paths the page shows the maps forming (#live-map); the stage shows the same picture,
  // copied here, and hides it with the page's. The stage's own HTML changes only when a method's map is done.
  function mirrorForming() {
    const slot = stage()?.querySelector(".stage-live");
    if (!slot) return;
    const source = document.querySelector("#live-map img");
    const shown = Boolean(source?.getAttribute("src")) && source.offsetParent !== null;
    const picture = slot.querySelector("img");
    if (shown) {
      if (picture.src !== source.src) picture.src = source.src;
      const label = document.querySelector("#live-map [data-testid='block-label']")?.textContent || "";
      const caption = slot.querySelector("figcaption");
      if (caption.textContent !== label) caption.textContent = label;
    }
    if (slot.hidden === shown) slot.hidden = !shown;
  }

  new MutationObserver(mirrorForming).observe(document.documentElement, {
    subtree: true, childList: true, attributes: true, attributeFilter: ["src", "class", "style"],
  });

  // Gradio may add this script after the document has loaded: then open at once.
  if (new URLSearchParams(location.search).get("view") === "stage") {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", open);
    else open();
  }
})();
