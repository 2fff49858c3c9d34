#!/usr/bin/env python3
"""PyTorch (eager) reference of the models experiments/quick.toml trains, for a paired
speed comparison with `geosr speed experiments/quick.toml --backend flex`.

Each variant (a: GeoSR, e: w/ Geo., f: w/o Geo.) is rebuilt module for module from
src/model/*.rs; parameter counts are asserted equal to geosr's. Inputs are random
tensors with geosr's shapes, padding layout and loss form (see README.md).
"""
import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

# --- Dimensions: configs/bench/static.toml, configs/backbone/tiny.toml, configs/recipe/cpu.toml,
# experiments/quick.toml [config], the defaults of src/config/schema.rs, and src/data.
FRAMES, GRID = 2, (4, 4)               # data.frames, data.vision_grid = data.geometry_grid
N_V = FRAMES * GRID[0] * GRID[1]       # 32 vision tokens (and 32 geometry tokens: no resize)
C_VISION_IN = 12 + 3                   # static_scenes::Rooms::VISION_CHANNELS (12 category one-hots + 3)
C_GEOMETRY_IN = 4                      # static_scenes::Rooms::GEOMETRY_CHANNELS
C_G = 16                               # model.geometry_channels
VOCAB, L_P, PAD = 106, 24, 0           # vocab::vocab_size(), vocab::PROMPT_LEN, vocab::PAD
MAX_OPTIONS, ROLES = 4, 4              # data::MAX_OPTIONS, batcher::ROLES
WIDTH, HEADS, DEPTH = 64, 4, 3         # model.backbone overrides in quick.toml
MLP_RATIO = 2                          # model.mlp_ratio: alignment MLP hidden = 2 * C
GAMMA, BETA = 0.8, 0.5                 # model.mask.gamma, model.mask.beta
K_MASK = math.ceil(GAMMA * N_V - 1e-9)  # masking::mask_size = 26
GROUNDING_W, NUMBER_W = 1.0, 1.0       # model.grounding (quick), train.number_weight
TRAIN_BATCH, EVAL_BATCH = 32, 64       # train.batch_size (recipe/cpu), eval.batch_size (default)
LR, WARMUP, TOTAL_STEPS = 3e-3, 20, 98304 // 32  # quick's lr, recipe warmup, 1 epoch of 98,304
ADAM = dict(betas=(0.9, 0.999), eps=1e-5, weight_decay=0.0)  # burn AdamConfig defaults

VARIANTS = {  # quick.toml [[variants]]: (random masking, fusion, geometry stream)
    "a": (True, "gated", True),
    "e": (False, "additive", True),
    "f": (False, "none", False),
}
GEOSR_PARAMS = {"a": 189281, "e": 180769, "f": 169985}  # `geosr speed` params column


class AlignMlp(nn.Module):
    """fusion.rs::AlignMlp: Linear -> GELU -> Linear."""

    def __init__(self, c_in, hidden, c_out):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(c_in, hidden), nn.Linear(hidden, c_out)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class GatedFusion(nn.Module):
    """fusion.rs::GatedFusion: alpha = sigmoid(W [LN_v(V) || LN_g(G)] + b), F = a V + (1 - a) G."""

    def __init__(self, c):
        super().__init__()
        self.norm_v, self.norm_g, self.gate = nn.LayerNorm(c), nn.LayerNorm(c), nn.Linear(2 * c, c)

    def forward(self, vision, geometry):
        v, g = self.norm_v(vision), self.norm_g(geometry)
        alpha = torch.sigmoid(self.gate(torch.cat([v, g], 2)))
        return alpha * v + (1 - alpha) * g, alpha


class Backbone(nn.Module):
    """backbone.rs::Backbone: [CLS, tokens] + learned positions, pre-norm encoder, final LN,
    option-pointer choice head and number head."""

    def __init__(self, seq_len):
        super().__init__()
        self.cls = nn.Parameter(torch.randn(1, 1, WIDTH) * 0.02)
        self.positions = nn.Parameter(torch.randn(1, seq_len + 1, WIDTH) * 0.02)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(WIDTH, HEADS, 4 * WIDTH, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True)
            for _ in range(DEPTH))
        self.norm = nn.LayerNorm(WIDTH)
        self.option_query, self.option_key = nn.Linear(WIDTH, WIDTH), nn.Linear(WIDTH, WIDTH)
        self.number_head = nn.Linear(WIDTH, 1)

    def forward(self, tokens, pad, option_spans, invalid_options):
        b, l, c = tokens.shape
        x = torch.cat([self.cls.expand(b, 1, c), tokens], 1) + self.positions
        pad = torch.cat([torch.zeros(b, 1, dtype=torch.bool), pad], 1)
        words = None  # prompt states after the first layer (keep_states: grounding head on)
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=pad)
            if words is None:
                words = x[:, l + 1 - L_P:]
        h = self.norm(x)
        pooled = h[:, 0]
        options = option_spans @ h[:, l + 1 - L_P:]                  # [B, O, C]
        query = self.option_query(pooled).unsqueeze(1)
        logits = (self.option_key(options) * query).sum(2) / math.sqrt(c)
        logits = logits.masked_fill(invalid_options, -1e4)
        return logits, self.number_head(pooled).squeeze(1), words, pooled


class GeoSR(nn.Module):
    """model/mod.rs::GeoSr for the three quick.toml variants."""

    def __init__(self, variant):
        super().__init__()
        self.masking, self.fusion, self.use_geometry = VARIANTS[variant]
        # tokenizers.rs::Tokenizers and GeometryEncoder: frozen random maps, counted, never trained.
        self.vision_tok = nn.Linear(C_VISION_IN, WIDTH).requires_grad_(False)
        self.prompt_tok = nn.Embedding(VOCAB, WIDTH).requires_grad_(False)
        if self.use_geometry:
            self.geometry_encoder = nn.Sequential(
                nn.Linear(C_GEOMETRY_IN, C_G), nn.GELU(), nn.Linear(C_G, C_G)).requires_grad_(False)
            self.align = AlignMlp(C_G, MLP_RATIO * WIDTH, WIDTH)
        self.gate = GatedFusion(WIDTH) if self.fusion == "gated" else None
        self.backbone = Backbone(N_V + L_P)
        self.grounding = nn.Linear(WIDTH, 2)      # training-only auxiliary heads,
        self.roles = nn.Linear(WIDTH, 2 * ROLES)  # left out of the count like geosr

    def answering_params(self):
        heads = sum(p.numel() for m in (self.grounding, self.roles) for p in m.parameters())
        return sum(p.numel() for p in self.parameters()) - heads

    def forward(self, batch, train: bool):
        f_v = self.vision_tok(batch["vision"])
        f_p = self.prompt_tok(batch["prompt"])
        prompt_pad = batch["prompt"] == PAD
        b = f_v.shape[0]
        geometry = self.align(self.geometry_encoder(batch["geometry"])) if self.use_geometry else None
        if train and self.masking:  # masking.rs::apply, Eqs. 5-7
            m = 1 - batch["random_set"] * batch["delta"].unsqueeze(1)
            f_v = f_v * m.unsqueeze(2)
        alpha = None
        if self.fusion == "additive":  # Eq. 1
            f_v = f_v + geometry
        elif self.fusion == "gated":   # Eqs. 12, 13, 15
            f_v, alpha = self.gate(f_v, geometry)
            alpha = alpha.mean(2)
        pad = torch.cat([torch.zeros(b, N_V, dtype=torch.bool), prompt_pad], 1)
        logits, number, words, pooled = self.backbone(
            torch.cat([f_v, f_p], 1), pad, batch["option_spans"], batch["invalid_options"])
        return dict(logits=logits, number=number, alpha=alpha,
                    grounding=self.grounding(words), roles=self.roles(pooled).view(b, ROLES, 2))


def position_error(pred, target, count):
    has = target[..., 2:3]
    err = (pred - target[..., :2]) * has
    return (err * err).sum() / (2 * max(count, 1))


def loss_fn(out, batch):
    """GeoSr::shard_loss: choice NLL + number squared error + the two grounding terms."""
    is_number = batch["is_number"]
    nll = -F.log_softmax(out["logits"], 1).gather(1, batch["choice_target"].unsqueeze(1)).squeeze(1)
    choice = (nll * (1 - is_number)).sum() / max(batch["n_choice"], 1)
    err = out["number"] - batch["number_target"]
    number = (err * err * is_number).sum() / max(batch["n_number"], 1)
    loss = choice + number * NUMBER_W
    loss = loss + position_error(out["grounding"], batch["grounding"], batch["n_grounded"]) * GROUNDING_W
    return loss + position_error(out["roles"], batch["roles"], batch["n_roles"]) * GROUNDING_W


def make_batch(n, train):
    """Random inputs in the layout of data::batcher::GeoBatch: prompts of 10..24 words padded
    with PAD at the end, half numerical questions, the rest with 2-4 options of one word each."""
    prompt = torch.randint(1, VOCAB, (n, L_P))
    lengths = torch.randint(10, L_P + 1, (n,))
    prompt[torch.arange(L_P).unsqueeze(0) >= lengths.unsqueeze(1)] = PAD
    is_number = (torch.rand(n) < 0.5).float()
    spans = torch.zeros(n, MAX_OPTIONS, L_P)
    invalid = torch.ones(n, MAX_OPTIONS, dtype=torch.bool)
    choice_target = torch.zeros(n, dtype=torch.long)
    grounding, roles = torch.zeros(n, L_P, 3), torch.zeros(n, ROLES, 3)
    for i in range(n):
        options = 0 if is_number[i] else int(torch.randint(2, MAX_OPTIONS + 1, ()))
        start = int(lengths[i]) - 2 * options  # "... A w B w C w": letter then one word
        for k in range(options):
            spans[i, k, start + 2 * k + 1] = 1.0
            invalid[i, k] = False
        if options:
            choice_target[i] = int(torch.randint(0, options, ()))
        named = torch.randperm(max(start, 1))[: int(torch.randint(1, 5, ()))].sort().values
        grounding[i, named, :2] = torch.randn(len(named), 2)
        grounding[i, named, 2] = 1.0
        roles[i, : len(named)] = grounding[i, named]
    random_set = torch.zeros(n, N_V)
    if train:
        random_set.scatter_(1, torch.rand(n, N_V).argsort(1)[:, :K_MASK], 1.0)
    return dict(
        vision=torch.rand(n, N_V, C_VISION_IN), geometry=torch.randn(n, N_V, C_GEOMETRY_IN),
        prompt=prompt, option_spans=spans, invalid_options=invalid, choice_target=choice_target,
        number_target=torch.rand(n) * 2 * is_number, is_number=is_number,
        grounding=grounding, roles=roles,
        delta=(torch.rand(n) < BETA).float() if train else torch.zeros(n), random_set=random_set,
        n_choice=int((1 - is_number).sum()), n_number=int(is_number.sum()),
        n_grounded=int(grounding[..., 2].sum()), n_roles=int(roles[..., 2].sum()))


def lr_at(step):
    """train/schedule.rs: linear warmup, then cosine decay to 0."""
    if step < WARMUP:
        return LR * (step + 1) / WARMUP
    progress = min((step - WARMUP) / max(TOTAL_STEPS - WARMUP, 1), 1.0)
    return 0.5 * LR * (1 + math.cos(math.pi * progress))


def bench(variant, steps, compile_model):
    torch.manual_seed(0)
    model = GeoSR(variant)
    params = model.answering_params()
    assert params == GEOSR_PARAMS[variant], f"{variant}: {params} params, geosr has {GEOSR_PARAMS[variant]}"
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=LR, **ADAM)
    forward, mode = model, "eager"
    if compile_model:
        try:
            forward = torch.compile(model)
            # Compile both graphs now (training step and inference), so a failure falls back here.
            batch = make_batch(TRAIN_BATCH, True)
            loss_fn(forward(batch, True), batch).backward()
            model.zero_grad(set_to_none=True)
            model.eval()
            with torch.inference_mode():
                forward(make_batch(EVAL_BATCH, False), False)
            mode = "compile"
        except Exception as e:  # noqa: BLE001 - any backend/toolchain failure
            print(f"# torch.compile failed for {variant} ({type(e).__name__}: {str(e)[:120]}); timing eager")
            forward = model
    pool = [make_batch(TRAIN_BATCH, True) for _ in range(4)]
    model.train()
    train_ms = []
    for step in range(3 + steps):
        batch = pool[step % len(pool)]
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        loss = loss_fn(forward(batch, True), batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = loss.item()  # geosr reads the loss back every step (NaN check)
        if step >= 3:
            train_ms.append(1000 * (time.perf_counter() - t0))
    assert math.isfinite(value)
    model.eval()
    pool = [make_batch(EVAL_BATCH, False) for _ in range(2)]
    infer_ms = []
    with torch.inference_mode():
        for step in range(3 + steps):
            batch = pool[step % len(pool)]
            t0 = time.perf_counter()
            forward(batch, False)["logits"].numpy()
            if step >= 3:
                infer_ms.append(1000 * (time.perf_counter() - t0) / EVAL_BATCH)
    return params, statistics.median(train_ms), statistics.median(infer_ms), mode


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="a,e,f", help="comma-separated labels of quick.toml (a, e, f)")
    ap.add_argument("--steps", type=int, default=30, help="timed steps/batches after 3 warm-up ones")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (falls back to eager)")
    ap.add_argument("--no-fastpath", action="store_true",
                    help="disable PyTorch's fused inference path of TransformerEncoderLayer")
    args = ap.parse_args()
    variants = [v.strip() for v in args.variant.split(",") if v.strip()]
    for v in variants:
        if v not in VARIANTS:
            ap.error(f"unknown variant {v!r}; expected some of {sorted(VARIANTS)}")
    torch.set_num_threads(args.threads)
    if args.no_fastpath:
        torch.backends.mha.set_fastpath_enabled(False)
    rows = [(v, *bench(v, args.steps, args.compile)) for v in variants]
    print(f"# torch {torch.__version__}, CPU, {torch.get_num_threads()} threads; train batch {TRAIN_BATCH}, "
          f"eval batch {EVAL_BATCH}; medians of {args.steps} steps after 3 warm-up steps")
    print("| variant | params | train ms/step | infer ms/sample | mode |")
    print("|---|---:|---:|---:|---|")
    for v, params, train_ms, infer_ms, mode in rows:
        print(f"| {v} | {params} | {train_ms:.1f} | {infer_ms:.3f} | {mode} |")


if __name__ == "__main__":
    main()
