namespace Sd35.Mesh;

/// <summary>The shape of a 2-D device mesh: rows (axis 0) × columns (axis 1), as the reference's mesh shapes (2, 4).</summary>
public readonly record struct MeshShape
{
    public int Rows { get; }
    public int Cols { get; }

    public MeshShape(int rows, int cols)
    {
        if (rows < 1 || cols < 1) throw new ArgumentException($"a mesh needs at least one row and one column, got {rows}x{cols}");
        Rows = rows;
        Cols = cols;
    }

    public int Size => Rows * Cols;

    /// <summary>The extent along <paramref name="axis"/> (0: rows, 1: columns).</summary>
    public int this[int axis] => CheckAxis(axis) == 0 ? Rows : Cols;

    /// <summary>This shape with the extent along <paramref name="axis"/> replaced.</summary>
    public MeshShape With(int axis, int extent) => CheckAxis(axis) == 0 ? new(extent, Cols) : new(Rows, extent);

    public override string ToString() => $"{Rows}x{Cols}";

    internal static int CheckAxis(int axis) =>
        axis is 0 or 1 ? axis : throw new ArgumentOutOfRangeException(nameof(axis), axis, "a mesh axis is 0 (rows) or 1 (columns)");
}

/// <summary>A position in a mesh: (row, column).</summary>
public readonly record struct MeshCoord(int Row, int Col)
{
    public int this[int axis] => MeshShape.CheckAxis(axis) == 0 ? Row : Col;

    public MeshCoord With(int axis, int value) => MeshShape.CheckAxis(axis) == 0 ? this with { Row = value } : this with { Col = value };

    public override string ToString() => $"({Row},{Col})";
}
