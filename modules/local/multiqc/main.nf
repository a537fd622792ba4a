process MULTIQC {
    label 'process_single'

    conda "${moduleDir}/environment.yml"

    input:
    path multiqc_files, stageAs: '_inputs/?/*'
    path multiqc_config, stageAs: '_inputs/config/*'
    path multiqc_methods_description, stageAs: '_inputs/methods/*'

    output:
    path "multiqc_report.html", emit: report
    path "*_data"             , emit: data
    path "versions.yml"       , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def methods = multiqc_methods_description ? "--config ${multiqc_methods_description}" : ''
    // The collated versions reach this task before it runs, so MultiQC adds its own
    // (a *_mqc_versions.yml file is read into the report's software versions)
    """
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        multiqc: \$( multiqc --version | sed -e "s/multiqc, version //g" )
    END_VERSIONS
    sed -e '1s/^"[^"]*:/"/' versions.yml > multiqc_mqc_versions.yml

    multiqc \\
        --force \\
        --config ${multiqc_config} \\
        ${methods} \\
        --filename multiqc_report.html \\
        ${args} \\
        .
    """

    stub:
    """
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        multiqc: \$( multiqc --version | sed -e "s/multiqc, version //g" )
    END_VERSIONS

    mkdir multiqc_report_data
    touch multiqc_report.html
    """
}
