using ScottPlot;

namespace Afinado.Evaluation.Figures;

/// <summary>A rendered chart: a ScottPlot plot plus the size it is drawn at. Saves as PNG or SVG, or inlines as base64.</summary>
public sealed class Figure(string name, Plot plot, int width = 640, int height = 420)
{
    /// <summary>File stem, e.g. <c>reliability-target</c>.</summary>
    public string Name { get; } = name;
    public Plot Plot { get; } = plot;
    public int Width { get; } = width;
    public int Height { get; } = height;

    public byte[] Png() => Plot.GetImageBytes(Width, Height, ImageFormat.Png);
    public string Svg() => Plot.GetSvgXml(Width, Height);

    public void SavePng(string path) => File.WriteAllBytes(path, Png());
    public void SaveSvg(string path) => File.WriteAllText(path, Svg());
}
