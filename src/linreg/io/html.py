"""A fit's report for a notebook: the text table as a string that shows as HTML.

`Fit.summary()` returns a Summary: a str holding exactly the text `linreg fit`
prints (so printing it, comparing it or searching it works as on any
string), whose repr is that text too, and whose `_repr_html_` -- what Jupyter
shows -- lays the same numbers out as statsmodels' summary does: a header of
the model and its statistics, the coefficient table, the residual tests.
Every name from the data is escaped.
"""
import math
from html import escape

from linreg.io.report import summary, weights_source


class Text(str):
    """A report that shows as its text, not as its quoted repr (a penalized fit's summary)."""

    def __repr__(self):
        return str(self)

    def _repr_pretty_(self, printer, cycle):  # IPython's plain-text display: the text, not its quoted repr
        printer.text(str(self))


class Summary(Text):
    """The text report of a fit, shown as tables in a notebook."""

    def __new__(cls, text, fit=None):
        self = super().__new__(cls, text)
        self.fit = fit
        return self

    @classmethod
    def of(cls, fit):
        return cls(summary(fit), fit)

    def _repr_html_(self):
        return html(self.fit)


def _number(value, digits=6):
    if value is None:
        return ""
    if isinstance(value, str):
        return escape(value)
    return "—" if math.isnan(value) else f"{value:.{digits}g}"


def _pairs_table(left, right):
    """Two columns of (label, value) pairs side by side, as statsmodels' header."""
    rows = []
    for i in range(max(len(left), len(right))):
        cells = []
        for side in (left, right):
            label, value = side[i] if i < len(side) else ("", "")
            cells.append(f"<th>{escape(label)}</th><td>{_number(value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return '<table class="simpletable">' + "".join(rows) + "</table>"


def _header(fit):
    stats, known, converged = fit.stats, fit.scaled.cross_products, fit.converged
    uncentered = "" if fit.scaled.intercept else " (uncentered)"
    left = [("Dep. Variable:", fit.target), ("Model:", "WLS" if fit.scaled.weighted else "OLS"),
            ("Method:", f"linreg, optimizer {fit.solution.name}"), ("Data:", str(fit.table.path)),
            ("No. Observations:", str(stats.n)), ("Df Residuals:", str(stats.df_residual)),
            ("Df Model:", str(len(fit.features))), ("Covariance Type:", fit.cov_type)]
    if fit.scaled.weighted:
        left.append(("Weights:", weights_source(fit)))
    if fit.formula is not None:
        left.append(("Formula:", fit.formula.text))
    right = [(f"R-squared{uncentered}:", stats.r_squared), (f"Adj. R-squared{uncentered}:", stats.adj_r_squared),
             ("Residual SD:", stats.residual_sd)]
    if converged:
        found = fit.diagnostics
        right += [("F-statistic:", found.f_statistic), ("Prob (F-statistic):", found.f_p_value),
                  ("Log-Likelihood:", found.log_likelihood), ("AIC:", found.aic), ("BIC:", found.bic)]
    state = f"{'converged' if converged else 'NOT converged'} after {fit.epochs} epochs"
    right.append(("Training:", state))
    if known:
        right.append(("Expected digits:", fit.estimated_digits))
    return _pairs_table(left, right)


def _coefficients(fit):
    stats, first = fit.stats, 0 if fit.scaled.intercept else 1
    values = list(zip(fit.names, range(first, len(stats.coefficients))))
    if not (fit.converged and fit.scaled.cross_products):
        head = "<tr><th></th><th>coef</th></tr>"
        rows = [f"<tr><th>{escape(name)}</th><td>{stats.coefficients[i]:.7g}</td></tr>" for name, i in values]
        return '<table class="simpletable">' + head + "".join(rows) + "</table>"
    z = "t" if fit.covariance.use_t else "z"
    head = (f"<tr><th></th><th>coef</th><th>std err</th><th>{z}</th><th>P&gt;|{z}|</th><th>[0.025</th>"
            "<th>0.975]</th></tr>")
    rows = []
    for name, i in values:
        cells = [f"{stats.coefficients[i]:.7g}", f"{stats.std_errors[i]:.4g}",
                 "—" if stats.exact else f"{stats.t[i]:.3f}", "—" if stats.exact else f"{stats.p_values[i]:.3g}",
                 f"{stats.ci_low[i]:.7g}", f"{stats.ci_high[i]:.7g}"]
        rows.append(f"<tr><th>{escape(name)}</th>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return '<table class="simpletable">' + head + "".join(rows) + "</table>"


def _residual_tests(fit):
    found = fit.diagnostics
    left = [("Omnibus:", found.omnibus), ("Prob(Omnibus):", found.omnibus_p_value), ("Skew:", found.skew),
            ("Kurtosis:", found.kurtosis)]
    right = [("Durbin-Watson:", found.durbin_watson), ("Jarque-Bera (JB):", found.jarque_bera),
             ("Prob(JB):", found.jarque_bera_p_value), ("Cond. No.:", found.condition_number_raw)]
    return _pairs_table(left, right)


def _notes(fit):
    notes = []
    if not fit.converged:
        notes.append("NOT CONVERGED: these coefficients are not the least-squares solution; " + fit.advice())
    elif not fit.scaled.cross_products:
        notes.append("Coefficients only: standard errors, t, p and intervals need the features' cross-products.")
    elif fit.stats.exact:
        notes.append("Exact fit: the residuals are zero to rounding, so t and p are not meaningful.")
    if fit.cov_type != "nonrobust":
        notes.append(f"Covariance {fit.cov_type}: the F test is a Wald test.")
    if fit.converged and (note := fit.diagnostics.condition_note):
        notes.append(note)
    return "".join(f"<p>{escape(note)}</p>" for note in notes)


def html(fit):
    """The fit's report as HTML: header, coefficients, residual tests, notes."""
    parts = [_header(fit), _coefficients(fit)]
    if fit.converged and fit.scaled.cross_products:
        parts.append(_residual_tests(fit))
    return '<div class="linreg-summary">' + "".join(parts) + _notes(fit) + "</div>"
