namespace Afinado.Planner.Architecture;

/// <summary>The vision transformers whose image inputs the planner plans.</summary>
public enum VisionEncoderKind
{
    /// <summary>Gemma 3's SigLIP (models/siglip/modeling_siglip.py): pre-norm LayerNorm blocks, biased q/k/v/out, fc1 → GELU
    /// (tanh) → fc2, full attention over every patch of the image.</summary>
    Siglip,
    /// <summary>Qwen2.5-VL's vision transformer (models/qwen2_5_vl/modeling_qwen2_5_vl.py): RMSNorm blocks, one fused biased
    /// qkv, a gated SiLU MLP with biases, window attention except in <c>fullatt_block_indexes</c>, then the 2×2 patch merger.</summary>
    Qwen25Vl,
    /// <summary>Qwen3-VL's vision model (models/qwen3_vl/modeling_qwen3_vl.py): LayerNorm blocks, one fused biased qkv,
    /// linear_fc1 → GELU (tanh) → linear_fc2, full attention over each image, the 2×2 patch merger and one "deepstack"
    /// merger per <c>deepstack_visual_indexes</c> entry whose features are added to the decoder's first layers.</summary>
    Qwen3Vl,
    /// <summary>Mistral 3's Pixtral tower (models/pixtral/modeling_pixtral.py): RMSNorm blocks, bias-free q/k/v/o and gated
    /// SiLU MLP, 2-D rotary; every image of the batch is one sequence of patches with a block-diagonal attention mask
    /// (generate_block_attention_mask); then Mistral3MultiModalProjector (RMSNorm, 2×2 patch merger, linear_1, GELU,
    /// linear_2).</summary>
    Pixtral,
    /// <summary>Llama 4's vision model (models/llama4/modeling_llama4.py Llama4VisionModel): each tile of an image is its own
    /// sequence of patches and a class token through LayerNorm blocks with biased q/k/v/o (2-D rotary in complex fp32) and
    /// fc1 → GELU → fc2; then the post-norm, the pixel shuffle and its MLP (fc1 → GELU → fc2 → GELU), and
    /// Llama4MultiModalProjector's linear.</summary>
    Llama4,
}

/// <summary>
/// A model's vision tower as an image's memory sees it: the transformer's shape, and how the model's processor turns an
/// image into patches (the tower's sequence) and into text tokens (the decoder's). Built by the family readers from
/// config.json's <c>vision_config</c>; the tower's tensors themselves are in <see cref="ModelArchitecture.Tensors"/>.
/// </summary>
public sealed record VisionEncoder
{
    public required VisionEncoderKind Kind { get; init; }
    public required int Depth { get; init; }
    public required long HiddenSize { get; init; }
    public required long IntermediateSize { get; init; }
    public required int Heads { get; init; }
    public required int PatchSize { get; init; }
    public int Channels { get; init; } = 3;

    /// <summary>SigLIP: the square side every image is resized to; Pixtral: the longest edge an image is scaled down to
    /// (<c>vision_config.image_size</c>).</summary>
    public int ImageSize { get; init; }
    /// <summary>Gemma 3: <c>mm_tokens_per_image</c>, the soft tokens the projector's average pooling leaves per image.</summary>
    public int TokensPerImage { get; init; }

    /// <summary>Qwen2.5-VL: <c>spatial_merge_size</c> (m × m patches become one token).</summary>
    public int MergeSize { get; init; } = 1;
    /// <summary>Qwen2.5-VL: <c>temporal_patch_size</c> (an image is repeated to that many frames).</summary>
    public int TemporalPatchSize { get; init; } = 1;
    /// <summary>Qwen3-VL: the deepstack mergers (one per <c>deepstack_visual_indexes</c> entry).</summary>
    public int DeepstackMergers { get; init; }
    /// <summary>Qwen2.5-VL: <c>window_size</c> in pixels; the blocks outside <see cref="FullAttentionBlocks"/> attend within
    /// windows. 0: every block attends over the whole image (Qwen3-VL).</summary>
    public int WindowSize { get; init; }
    public IReadOnlyList<int> FullAttentionBlocks { get; init; } = [];
    /// <summary>The Qwen processors keep an image's pixel count within these bounds (<c>preprocessor_config.json</c>:
    /// Qwen2.5-VL's min_pixels / max_pixels are transformers' Qwen2VLImageProcessor defaults; Qwen3-VL's checkpoints ship
    /// size {shortest_edge 65,536, longest_edge 16,777,216}).</summary>
    public long MinPixels { get; init; } = 56 * 56;
    public long MaxPixels { get; init; } = 28 * 28 * 16384;
    /// <summary>Llama 4: the processor's <c>max_patches</c>, the most tiles of <see cref="ImageSize"/> an image is cut into
    /// (Llama4ImageProcessorFast's default 16), and the tokens one tile becomes after the pixel shuffle
    /// (Llama4Processor: (tile / patch)² ÷ round(1 / pixel_shuffle_ratio²)).</summary>
    public int MaxTiles { get; init; } = 16;
    public int TokensPerTile { get; init; }

    /// <summary>The model's processor needs an image size (Qwen2.5-VL keeps each image's resolution); SigLIP resizes to its own.</summary>
    public bool NeedsImageSize => Kind != VisionEncoderKind.Siglip;

    /// <summary>How the processor sizes an image, for messages.</summary>
    public string SizeRule => Kind switch
    {
        VisionEncoderKind.Siglip => $"resizes every image to {ImageSize} × {ImageSize} pixels",
        VisionEncoderKind.Pixtral => $"keeps each image's resolution up to a longest edge of {ImageSize:N0} pixels",
        VisionEncoderKind.Llama4 => $"cuts each image into up to {MaxTiles} tiles of {ImageSize} × {ImageSize} pixels by its size and aspect ratio",
        _ => $"keeps each image's resolution (within {MinPixels:N0}–{MaxPixels:N0} pixels)",
    };

    /// <summary>One image of <paramref name="width"/> × <paramref name="height"/> pixels as the processor prepares it.</summary>
    public ImageGeometry Image(int? width, int? height) => Kind switch
    {
        VisionEncoderKind.Siglip => Siglip(),
        VisionEncoderKind.Pixtral => Pixtral(width ?? throw new ArgumentNullException(nameof(width)), height ?? throw new ArgumentNullException(nameof(height))),
        VisionEncoderKind.Llama4 => Llama4(width ?? throw new ArgumentNullException(nameof(width)), height ?? throw new ArgumentNullException(nameof(height))),
        _ => Qwen(width ?? throw new ArgumentNullException(nameof(width)), height ?? throw new ArgumentNullException(nameof(height))),
    };

    /// <summary>
    /// Mistral3Processor: PixtralImageProcessor scales an image down (floor) until its longest edge fits image_size, then
    /// up to whole merged patches (patch × merge pixels, the processor's patch_size; get_resize_output_image_size); each row
    /// of merged patches becomes that many [IMG] tokens and an [IMG_BREAK], the last one an [IMG_END]
    /// (processing_mistral3.py). The tower sees every patch (merge² per token).
    /// </summary>
    private ImageGeometry Pixtral(int width, int height)
    {
        long cell = (long)PatchSize * MergeSize;
        double ratio = Math.Max(height / (double)ImageSize, width / (double)ImageSize);
        long h = height, w = width;
        if (ratio > 1)
        {
            h = (long)Math.Floor(height / ratio);
            w = (long)Math.Floor(width / ratio);
        }
        long rows = (Math.Max(1, h) - 1) / cell + 1, columns = (Math.Max(1, w) - 1) / cell + 1;
        long patches = rows * columns * MergeSize * MergeSize;
        return new ImageGeometry((int)(columns * cell), (int)(rows * cell), patches, rows * columns, rows * (columns + 1),
            (long)Channels * rows * cell * columns * cell, [patches]);
    }

    /// <summary>
    /// Llama4ImageProcessorFast: the image goes onto the canvas of tiles <see cref="Llama4Canvas"/> picks (resized within it
    /// without distortion, padded to it), cut into its tiles, and, when there are several, followed by a global tile (the
    /// whole image resized to one tile). pixel_values are (tiles, channels, tile, tile). Each tile is a sequence of
    /// (tile / patch)² patches and a class token through the tower; the pixel shuffle leaves <see cref="TokensPerTile"/>
    /// features of it. Llama4Processor (_prompt_split_image) writes &lt;|image_start|&gt;, then, with several tiles, per row
    /// of tiles each tile's &lt;|patch|&gt; tokens separated by &lt;|tile_x_separator|&gt; and the row ended by
    /// &lt;|tile_y_separator|&gt;; then &lt;|image|&gt;, the global tile's (or the single tile's) patch tokens and
    /// &lt;|image_end|&gt;.
    /// </summary>
    private ImageGeometry Llama4(int width, int height)
    {
        var (rows, columns) = Llama4Canvas(height, width, ImageSize, MaxTiles);
        long tiles = (long)rows * columns, sequences = tiles > 1 ? tiles + 1 : 1;
        long side = ImageSize / PatchSize, perTile = side * side + 1;
        long text = 3 + TokensPerTile + (tiles > 1 ? rows * (columns * (long)TokensPerTile + columns) : 0);
        return new ImageGeometry(columns * ImageSize, rows * ImageSize, sequences * perTile, sequences * TokensPerTile, text,
            sequences * Channels * ImageSize * ImageSize, [perTile]) { Sequences = sequences };
    }

    /// <summary>
    /// The tile grid (rows, columns) Llama4ImageProcessorFast puts an image of <paramref name="height"/> ×
    /// <paramref name="width"/> on (image_processing_llama4_fast.py). find_supported_resolutions lists every grid of at
    /// most <paramref name="maxTiles"/> tiles, grouped by aspect ratio in the order it meets them (tile counts from the most
    /// down, each count's factors ascending); get_best_fit scales the image to each canvas without distortion (the smaller
    /// of the two sides' scales, float32 as torch divides an int64 tensor) and takes the smallest scale of at least 1, or
    /// else the largest below 1 (resize_to_max_canvas off), and among the canvases at that scale the first of least area.
    /// </summary>
    internal static (int Rows, int Columns) Llama4Canvas(int height, int width, int tile, int maxTiles)
    {
        var order = new List<double>();
        var byRatio = new Dictionary<double, List<(int Rows, int Columns)>>();
        for (int count = maxTiles; count >= 1; count--)
            for (int rows = 1; rows <= count; rows++)
            {
                if (count % rows != 0) continue;
                int columns = count / rows;
                double ratio = rows / (double)columns;
                if (!byRatio.TryGetValue(ratio, out var list))
                {
                    byRatio[ratio] = list = [];
                    order.Add(ratio);
                }
                list.Add((rows, columns));
            }
        var grids = order.SelectMany(r => byRatio[r]).ToList();
        float Scale((int Rows, int Columns) g)
        {
            float w = (float)(g.Columns * tile) / width, h = (float)(g.Rows * tile) / height;
            return h > w ? w : h;
        }
        var scales = grids.Select(Scale).ToList();
        float selected = scales.Any(x => x >= 1) ? scales.Where(x => x >= 1).Min() : scales.Where(x => x < 1).Max();
        (int Rows, int Columns) best = default;
        long area = long.MaxValue;
        for (int i = 0; i < grids.Count; i++)
        {
            if (scales[i] != selected) continue;
            long a = (long)grids[i].Rows * grids[i].Columns;
            if (a < area) (best, area) = (grids[i], a);
        }
        return best;
    }

    /// <summary>
    /// Gemma3ImageProcessor resizes to image_size × image_size (pan and scan off, its default); SigLIP sees
    /// (image_size / patch)² patches, Gemma3MultiModalProjector average-pools them to mm_tokens_per_image, and
    /// Gemma3Processor expands the image's placeholder to <c>\n\n&lt;start_of_image&gt;</c> + the soft tokens +
    /// <c>&lt;end_of_image&gt;\n\n</c> (processing_gemma3.py full_image_sequence): at most 4 tokens besides the soft ones
    /// (Gemma's tokenizer may merge a "\n\n" into a longer run of newlines).
    /// </summary>
    private ImageGeometry Siglip()
    {
        long side = ImageSize / PatchSize, patches = side * side;
        return new ImageGeometry(ImageSize, ImageSize, patches, TokensPerImage, TokensPerImage + 4,
            (long)Channels * ImageSize * ImageSize, [patches]);
    }

    /// <summary>
    /// Qwen2VLImageProcessor (image_processing_qwen2_vl.py smart_resize, factor = patch × merge): each side rounded to a
    /// multiple of the factor (Python's round, half to even), then scaled down (floor) or up (ceil) to keep the pixel count
    /// within min_pixels–max_pixels. pixel_values holds one row of channels × temporal × patch² values per patch; the
    /// merger turns merge² patches into one token, and the processor adds &lt;|vision_start|&gt; and &lt;|vision_end|&gt;.
    /// The window attention's spans (get_window_index): the merged grid in windows of window_size / merge / patch cells,
    /// the last row and column of windows cut short.
    /// </summary>
    private ImageGeometry Qwen(int width, int height)
    {
        long factor = (long)PatchSize * MergeSize;
        if (Math.Max(width, height) / (double)Math.Min(width, height) > 200)
            throw new ArgumentOutOfRangeException(nameof(width), "the aspect ratio must be below 200 (Qwen2VLImageProcessor smart_resize)");
        long h = Math.Max(factor, (long)Math.Round(height / (double)factor, MidpointRounding.ToEven) * factor);
        long w = Math.Max(factor, (long)Math.Round(width / (double)factor, MidpointRounding.ToEven) * factor);
        if (h * w > MaxPixels)
        {
            double beta = Math.Sqrt(height * (double)width / MaxPixels);
            h = Math.Max(factor, (long)Math.Floor(height / beta / factor) * factor);
            w = Math.Max(factor, (long)Math.Floor(width / beta / factor) * factor);
        }
        else if (h * w < MinPixels)
        {
            double beta = Math.Sqrt(MinPixels / (height * (double)width));
            h = (long)Math.Ceiling(height * beta / factor) * factor;
            w = (long)Math.Ceiling(width * beta / factor) * factor;
        }
        long gh = h / PatchSize, gw = w / PatchSize, patches = gh * gw;
        long unit = (long)MergeSize * MergeSize, tokens = patches / unit;
        var spans = new List<long>();
        long cells = WindowSize / MergeSize / PatchSize;
        long mh = gh / MergeSize, mw = gw / MergeSize;
        if (cells < 1) spans.Add(patches);
        else
            for (long r = 0; r < mh; r += cells)
                for (long c = 0; c < mw; c += cells)
                    spans.Add(Math.Min(cells, mh - r) * Math.Min(cells, mw - c) * unit);
        return new ImageGeometry((int)w, (int)h, patches, tokens, tokens + 2,
            patches * Channels * TemporalPatchSize * PatchSize * PatchSize, spans);
    }
}

/// <summary>
/// One image as the model sees it: the resized size, the tower's sequence (<see cref="Patches"/>), the tokens its features
/// become (<see cref="Tokens"/>) and the text tokens the processor puts in the sequence for it (<see cref="SequenceTokens"/>,
/// the image's tokens and their markers), pixel_values' elements, and the attention spans of the tower's windowed
/// blocks (one span of every patch where the tower attends over the whole image).
/// </summary>
public sealed record ImageGeometry(int Width, int Height, long Patches, long Tokens, long SequenceTokens, long PixelElements, IReadOnlyList<long> WindowSpans)
{
    /// <summary>The sequences the tower runs per image (Llama 4: one per tile, the global tile included); their patches
    /// together are <see cref="Patches"/>.</summary>
    public long Sequences { get; init; } = 1;
}
